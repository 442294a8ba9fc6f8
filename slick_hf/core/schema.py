"""The columns every stage reads and writes, and the checks that give one clear error line.

- `QUESTION_FEATURES`: a question set (what `slick_hf.data` produces and `annotate` reads).
- `SLICK_FEATURES`: the columns annotation adds, documented in `SLICK_COLUMN_DOCS`.
- `category_names`: the SliCK category of each row as a name, however it was stored.
"""

from collections import Counter
from collections.abc import Iterable

from datasets import ClassLabel, Dataset, Features, List, Value

from slick_hf.core.normalize import normalize_answer
from slick_hf.core.slick import CATEGORIES
from slick_hf.errors import SlickError

QUESTION_FEATURES = Features(
    {
        "id": Value("string"),
        "relation": Value("string"),
        "subject": Value("string"),
        "question": Value("string"),
        "answers": List(Value("string")),
        "split": Value("string"),
    }
)
REQUIRED = ("id", "relation", "question", "answers")
ANNOTATED_REQUIRED = (*REQUIRED, "slick_category")
CATEGORY_LABEL = ClassLabel(names=list(CATEGORIES))
SLICK_FEATURES = {
    "slick_category": CATEGORY_LABEL,
    "slick_p_greedy": Value("float64"),
    "slick_p_sample": Value("float64"),
    "slick_greedy_answers": List(Value("string")),
    "slick_greedy_correct": Value("int32"),
    "slick_samples_drawn": Value("int32"),
    "slick_samples_correct": Value("int32"),
    "slick_generations": Value("int32"),
    "slick_prompt_greedy_correct": List(Value("bool")),
    "slick_prompt_samples_drawn": List(Value("int32")),
    "slick_prompt_samples_correct": List(Value("int32")),
    "slick_label_stability": Value("float64"),
}
# written since label stability exists; annotations made before lack them (see `slick_hf.core.evidence`)
EVIDENCE_COLUMNS = ("slick_prompt_greedy_correct", "slick_prompt_samples_drawn", "slick_prompt_samples_correct")
# computed over a whole split once its rows are annotated (`slick_hf.core.predictive`), not per row
STABILITY_COLUMN = "slick_label_stability"
ROW_FEATURES = {name: feature for name, feature in SLICK_FEATURES.items() if name != STABILITY_COLUMN}
SLICK_COLUMN_DOCS = {
    "slick_category": "SliCK category: HighlyKnown, MaybeKnown, WeaklyKnown or Unknown",
    "slick_p_greedy": "P(T=0): share of the greedy answers (one per few-shot prompt) that are correct",
    "slick_p_sample": "P(T>0): correct samples / (prompts x samples per prompt); a lower bound unless "
    "full_sampling is true, since adaptive sampling stops after the round of the first correct sample",
    "slick_greedy_answers": "the greedy answer to each few-shot prompt, in prompt order",
    "slick_greedy_correct": "number of correct greedy answers",
    "slick_samples_drawn": "number of temperature samples drawn for this example",
    "slick_samples_correct": "number of correct samples among those drawn",
    "slick_generations": "generations spent on this example (greedy + samples)",
    "slick_prompt_greedy_correct": "per few-shot prompt, in prompt order: whether its greedy answer is correct",
    "slick_prompt_samples_drawn": "per few-shot prompt: temperature samples drawn (0 where adaptive sampling "
    "stopped before the prompt)",
    "slick_prompt_samples_correct": "per few-shot prompt: correct samples among those drawn",
    "slick_label_stability": "probability that an independent re-annotation (new exemplar sets, new samples, the "
    "same budget) gives the same category: the posterior predictive under Beta priors fitted to the split",
}
SKIPPED_DOC = (
    "user datasets: why SliCK did not judge a row (its slick_* values are null): not short-form "
    "(a long or multi-turn answer), or a held-out exemplar; null when judged"
)


def validate_questions(ds: Dataset, name: str, required: Iterable[str] = REQUIRED) -> None:
    """Raise SlickError naming the first problem: a missing, mistyped or null column, an empty or unjudgeable
    answer list, a duplicate id."""
    missing = [c for c in required if c not in ds.column_names]
    if missing:
        raise SlickError(f"{name}: missing column(s) {', '.join(missing)}; found {', '.join(ds.column_names)}")
    for col in ("id", "relation", "question"):
        if col not in ds.column_names:
            continue
        if ds.features[col] != Value("string"):
            raise SlickError(f"{name}: column {col!r} must be a string, found {ds.features[col]}")
        nulls = [i for i, v in enumerate(ds[col][:]) if v is None or not v.strip()]
        if nulls:
            raise SlickError(f"{name}: column {col!r} is null or empty in {len(nulls)} row(s) (first: row {nulls[0]})")
    answers = ds.features["answers"]
    inner = getattr(answers, "feature", None)
    if inner is None and isinstance(answers, list):
        inner = answers[0]
    if inner not in (Value("string"), Value("null")):
        raise SlickError(f"{name}: column 'answers' must be a list of strings, found {answers}")
    answers_col = ds["answers"][:]
    empty = [i for i, a in enumerate(answers_col) if not a or not any(s and s.strip() for s in a)]
    if empty:
        raise SlickError(f"{name}: {len(empty)} row(s) have an empty answer list (first: row {empty[0]})")
    bad = [i for i, a in enumerate(answers_col) if any(s is None or not normalize_answer(s) for s in a)]
    if bad:
        raise SlickError(
            f"{name}: {len(bad)} row(s) have a null alias or one that normalises to nothing, such as 'the' "
            f"(first: row {bad[0]}: {answers_col[bad[0]]!r}); exact match could never judge it"
        )
    ids = ds["id"]
    if len(set(ids)) != len(ids):
        raise SlickError(f"{name}: column 'id' has duplicate values; ids must be unique")


def check_annotated_columns(ds: Dataset, where: str) -> None:
    """Raise SlickError when `ds` lacks a column an annotated dataset has (with a hint when unannotated)."""
    missing = [c for c in ANNOTATED_REQUIRED if c not in ds.column_names]
    if missing:
        hint = " (not annotated? run `slick-hf annotate`)" if "slick_category" in missing else ""
        raise SlickError(f"{where}: missing column(s) {', '.join(missing)}; found {', '.join(ds.column_names)}{hint}")


def category_names(ds: Dataset, allow_missing: bool = False) -> list[str | None] | None:
    """The SliCK category of each row as a name, or None for a dataset without categories.

    Reads `slick_category` (a ClassLabel, or strings) of an annotated dataset, else the
    `category` column of a fine-tuning variant; raises SlickError on a value that is not a category.
    With `allow_missing`, a row SliCK did not judge (null: not short-form, a held-out exemplar) is None.
    """
    if "slick_category" in ds.column_names:
        feature, values = ds.features["slick_category"], ds["slick_category"][:]
        if isinstance(feature, ClassLabel):
            try:
                names = [feature.names[v] if v is not None and v >= 0 else None for v in values]
            except IndexError:
                raise SlickError("slick_category holds labels outside its ClassLabel names") from None
        elif isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
            names = list(values)
        else:
            raise SlickError(f"column 'slick_category' must be a ClassLabel or a string, found {feature}")
    elif "category" in ds.column_names:
        names = list(ds["category"][:])
    else:
        return None
    bad = Counter(v for v in names if v not in CATEGORIES and not (allow_missing and v is None))
    if bad:
        shown = ", ".join(f"{v!r} x{n}" for v, n in bad.most_common(5))
        raise SlickError(f"SliCK categories outside {', '.join(CATEGORIES)}: {shown}")
    return names
