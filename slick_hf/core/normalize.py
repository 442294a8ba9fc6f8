"""SQuAD-style answer normalisation and exact match: the one definition used project-wide."""

import re
import string
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, strip punctuation, drop articles a/an/the, fold whitespace (SQuAD v1.1)."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Iterable[str]) -> bool:
    """True when the normalised prediction equals the normalised form of any gold alias."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(a) for a in answers)
