"""The paper's analyses over a folder of runs: per-category tables, Equation 1, IDK, training dynamics, plots."""
