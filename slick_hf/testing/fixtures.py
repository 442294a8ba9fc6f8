"""Tiny hand-made geography questions in EntityQuestions form, for tests and demos."""

from __future__ import annotations

TEMPLATES = {"capital": "What is the capital of {}?", "city_country": "Which country is {} located in?"}

DEV_FACTS = [
    ("capital", "Germany", "Berlin"),
    ("capital", "Italy", "Rome"),
    ("capital", "Spain", "Madrid"),
    ("capital", "Egypt", "Cairo"),
    ("capital", "Canada", "Ottawa"),
    ("capital", "Kenya", "Nairobi"),
    ("city_country", "Munich", "Germany"),
    ("city_country", "Osaka", "Japan"),
    ("city_country", "Lyon", "France"),
    ("city_country", "Toronto", "Canada"),
    ("city_country", "Milan", "Italy"),
    ("city_country", "Porto", "Portugal"),
]

TEST_FACTS = [
    ("capital", "France", "Paris"),
    ("capital", "Japan", "Tokyo"),
    ("capital", "Tuvalu", "Funafuti"),
    ("city_country", "Barcelona", "Spain"),
    ("city_country", "Kumasi", "Ghana"),
]


def _rows(facts, split: str) -> list[dict]:
    return [
        {"id": f"tiny/{rel}/{split}/{i}", "relation": rel, "question": TEMPLATES[rel].format(s), "answers": [a]}
        for i, (rel, s, a) in enumerate(facts)
    ]


def tiny_geo_rows() -> tuple[list[dict], list[dict]]:
    """(questions, dev rows): a few geo-like examples in EntityQuestions form, and exemplars."""
    return _rows(TEST_FACTS, "test"), _rows(DEV_FACTS, "dev")
