"""Evaluation: greedy answers through any engine, scored per SliCK category by our `evaluate` metric
(`slick_exact_match/`, shipped inside the package and publishable as an `evaluate` Space)."""
