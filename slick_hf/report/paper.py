"""The paper's reference numbers (Gekhman et al. 2024, Tables 1-2 and Equation 1), shown beside ours."""

# The paper's Table 2: in-distribution test accuracy %, Full / HK / MK / WK / Unk.
PAPER_TABLE = {
    "D_HighlyKnown": {"early_stop": (40.5, 98.7, 60.1, 9.0, 0.6), "convergence": (40.0, 98.4, 58.8, 8.5, 0.7)},
    "D_MaybeKnown": {"early_stop": (43.6, 98.4, 69.9, 12.1, 1.0), "convergence": (43.2, 97.5, 68.2, 12.9, 1.3)},
    "D_WeaklyKnown": {"early_stop": (39.2, 95.0, 59.2, 8.6, 0.4), "convergence": (35.4, 73.5, 55.8, 17.2, 2.2)},
    "D_Unknown": {"early_stop": (37.5, 95.6, 52.9, 6.5, 0.6), "convergence": (25.8, 55.8, 36.6, 12.2, 3.2)},
    "D_Natural": {"early_stop": (43.5, 98.0, 67.6, 14.1, 1.8), "convergence": (41.8, 95.5, 61.7, 14.8, 2.5)},
}
# D at 100 % Unknown is the paper's D_Unknown (every example Unknown, the relations' shares kept).
PAPER_ALIASES = {"D_unk1.00": "D_Unknown"}


def paper_table_row(name: str, point: str) -> tuple[float, ...] | None:
    """The paper's Table 2 numbers (Full / HK / MK / WK / Unk) for one of our variants at one stopping point."""
    return PAPER_TABLE.get(PAPER_ALIASES.get(name, name), {}).get(point)


PAPER_EQ1 = {
    "test": {"b0": 36.9, "b_kn": 7.3, "b_unk": -8.3, "r2": 0.86},
    "test_ood": {"b0": 36.2, "b_kn": 3.2, "b_unk": -3.0, "r2": 0.95},
}
# (accuracy on answered %, % answered), 50 % Unknown.
PAPER_IDK = {
    "D_unk0.50": {"early_stop": (43.0, 100.0), "convergence": (38.8, 100.0)},
    "D_IDK_unk0.50": {"early_stop": (61.8, 58.7), "convergence": (61.8, 55.6)},
}
