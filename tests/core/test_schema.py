"""The question checks name the first bad row before any model is loaded."""

import pytest
from datasets import Dataset

from slick_hf.core.schema import category_names, validate_questions
from slick_hf.errors import SlickError


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({"question": None}, "'question' is null or empty"),
        ({"id": " "}, "'id' is null or empty"),
        ({"answers": ["the"]}, "normalises to nothing"),
        ({"answers": [None, "Cairo"]}, "null alias"),
        ({"answers": []}, "empty answer list"),
    ],
)
def test_bad_rows_are_named(row, needle):
    good = {"id": "a", "relation": "capital", "question": "What is the capital of Egypt?", "answers": ["Cairo"]}
    other = {**good, "id": "b"}
    with pytest.raises(SlickError, match=needle):
        validate_questions(Dataset.from_list([other, {**good, **row}]), "user set")
    validate_questions(Dataset.from_list([good, other]), "user set")


def test_category_names_reject_values_outside_slick():
    assert category_names(Dataset.from_list([{"category": "Unknown"}])) == ["Unknown"]
    assert category_names(Dataset.from_list([{"x": 1}])) is None
    with pytest.raises(SlickError, match="outside"):
        category_names(Dataset.from_list([{"category": "Known-ish"}]))
