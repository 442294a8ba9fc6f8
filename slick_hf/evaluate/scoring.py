"""Evaluation: generate answers through an engine, score them with the slick_exact_match metric."""

import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from datasets import Dataset

from slick_hf.core.schema import category_names
from slick_hf.core.slick import clean_completion
from slick_hf.engines.base import Engine, GenerationRequest
from slick_hf.errors import SlickError

logger = logging.getLogger(__name__)

# One source, evaluation/slick_exact_match/ (also the metric's Space); a wheel ships it inside the package.
SOURCE_METRIC_DIR = Path(__file__).resolve().parents[2] / "evaluation" / "slick_exact_match"
METRIC_DIR = SOURCE_METRIC_DIR if SOURCE_METRIC_DIR.is_dir() else Path(__file__).resolve().parent / "slick_exact_match"


@lru_cache(maxsize=1)
def load_metric():
    """Our `evaluate` metric, from the installed package or `$SLICK_METRIC_PATH` (a folder or Hub id)."""
    import evaluate

    source = os.environ.get("SLICK_METRIC_PATH", str(METRIC_DIR))
    try:
        return evaluate.load(source, keep_in_memory=True)
    except (FileNotFoundError, OSError) as err:
        raise SlickError(f"cannot load the slick_exact_match metric from {source}: {err}") from None


def generate_answers(
    engine: Engine, prompts: Sequence[str], max_new_tokens: int = 24, batch_size: int = 64
) -> list[str]:
    """Greedy answers, one per prompt, cut at the first newline."""
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        outs = engine.generate([GenerationRequest(p, max_new_tokens=max_new_tokens) for p in chunk])
        answers += [clean_completion(o[0]) for o in outs]
    return answers


def score(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    categories: Sequence[str] | None,
    abstention_patterns: Sequence[str] = ("I don't know",),
    return_per_example: bool = False,
) -> dict:
    """Exact match overall and per SliCK category, with abstention shares."""
    return load_metric().compute(
        predictions=list(predictions),
        references=[list(r) for r in references],
        categories=list(categories) if categories is not None else None,
        abstention_patterns=list(abstention_patterns),
        return_per_example=return_per_example,
    )


def evaluate_split(
    engine: Engine,
    ds: Dataset,
    prompt_template: str,
    max_new_tokens: int = 24,
    abstention_patterns: Sequence[str] = ("I don't know",),
) -> tuple[dict, Dataset]:
    """Per-category metrics of `engine` on an annotated split, and its predictions.

    Rows SliCK did not judge (null `slick_category`: long-form answers, held-out exemplars) have no
    category to be scored under and are left out (logged).
    """
    categories = category_names(ds, allow_missing=True)
    if categories and None in categories:
        judged = [i for i, c in enumerate(categories) if c is not None]
        if not judged:
            raise SlickError("no row of this split was judged by SliCK (all are long-form or held-out exemplars)")
        logger.info("evaluating the %d of %d rows SliCK judged", len(judged), ds.num_rows)
        ds, categories = ds.select(judged), [categories[i] for i in judged]
    prompts = [prompt_template.format(question=q) for q in ds["question"]]
    predictions = generate_answers(engine, prompts, max_new_tokens)
    metrics = score(predictions, ds["answers"], categories, abstention_patterns)
    preds = Dataset.from_dict(
        {
            "id": list(ds["id"]),
            "relation": list(ds["relation"]),
            "question": list(ds["question"]),
            "answers": list(ds["answers"]),
            "category": categories or [""] * len(ds),
            "prediction": predictions,
        }
    )
    return metrics, preds
