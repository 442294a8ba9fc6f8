"""The question schema every stage reads, and the check that gives one clear error line."""

from collections.abc import Iterable

from datasets import ClassLabel, Dataset, Features, Sequence, Value

from .errors import SlickError
from .slick import CATEGORIES

QUESTION_FEATURES = Features(
    {
        "id": Value("string"),
        "relation": Value("string"),
        "subject": Value("string"),
        "question": Value("string"),
        "answers": Sequence(Value("string")),
        "split": Value("string"),
    }
)
REQUIRED = ("id", "relation", "question", "answers")
CATEGORY_LABEL = ClassLabel(names=list(CATEGORIES))


def validate_questions(ds: Dataset, name: str, required: Iterable[str] = REQUIRED) -> None:
    """Raise SlickError naming the first problem: a missing or mistyped column, an empty answer list."""
    missing = [c for c in required if c not in ds.column_names]
    if missing:
        raise SlickError(f"{name}: missing column(s) {', '.join(missing)}; found {', '.join(ds.column_names)}")
    for col in ("id", "relation", "question"):
        if col in ds.column_names and ds.features[col] != Value("string"):
            raise SlickError(f"{name}: column {col!r} must be a string, found {ds.features[col]}")
    answers = ds.features["answers"]
    inner = getattr(answers, "feature", None)
    if inner is None and isinstance(answers, list):
        inner = answers[0]
    if inner not in (Value("string"), Value("null")):
        raise SlickError(f"{name}: column 'answers' must be a list of strings, found {answers}")
    empty = [i for i, a in enumerate(ds["answers"]) if not a or not any(s and s.strip() for s in a)]
    if empty:
        raise SlickError(f"{name}: {len(empty)} row(s) have an empty answer list (first: row {empty[0]})")
    ids = ds["id"]
    if len(set(ids)) != len(ids):
        raise SlickError(f"{name}: column 'id' has duplicate values; ids must be unique")
