"""Test cases of the metric, in the `evaluate` Space layout: inputs and the results `compute` must give.

`tests/evaluate/test_metric.py` of slick-hf runs every case against the module next to this file.
"""

test_cases = [
    {
        "predictions": ["Paris", "the Rome", "I don't know.", "Oslo"],
        "references": [["Paris"], ["Rome"], ["Bern"], ["Oslo", "Christiania"]],
        "categories": ["HighlyKnown", "MaybeKnown", "Unknown", "WeaklyKnown"],
        "result": {"exact_match": 0.75, "exact_match_Known": 1.0, "exact_match_Unknown": 0.0, "answered": 0.75},
    },
    {
        "predictions": ["Lima", "Tokyo"],
        "references": [["Peru"], ["Tokyo"]],
        "categories": [3, 0],
        "result": {"exact_match": 0.5, "exact_match_HighlyKnown": 1.0, "exact_match_Unknown": 0.0, "answered": 1.0},
    },
]
