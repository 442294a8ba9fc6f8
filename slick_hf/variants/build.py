"""Build one fine-tuning set (D, D_Known, D_IDK, a single category, the natural mix) from a pool.

See `slick_hf.variants.pool` for how rows are apportioned over relations and how |D| is chosen.
Sampling: a relation's candidates of one group (Known, Unknown, a category, or all) are sorted
by id and shuffled with `random.Random(f"{seed}:{relation}:{group}")`; a variant takes a prefix
of that ordering. So a seed picks the same rows whatever the input's row order, D at ratios X
and X' share as many rows as they can, and D_Known / D_IDK are derived from the very same D.
"""

import random
from collections import Counter
from fractions import Fraction

import pyarrow as pa
from datasets import Dataset, Features, List, Value

from slick_hf.core.schema import category_names
from slick_hf.core.slick import CATEGORIES, KNOWN
from slick_hf.errors import SlickError
from slick_hf.variants.pool import (
    PoolIndex,
    column_values,
    default_size_for,
    draw_plan,
    index_pool,
    largest_remainder,
    relation_weights,
    shortfalls,
    variant_max_size,
)
from slick_hf.variants.spec import RATIO_VARIANTS, VARIANTS, WHOLE, VariantSpec, variant_name

OUTPUT_FEATURES = Features(
    {
        "prompt": Value("string"),
        "completion": Value("string"),
        "id": Value("string"),
        "relation": Value("string"),
        "category": Value("string"),
        "answers": List(Value("string")),
        "is_idk": Value("bool"),
    }
)


def _ordering(rows: list[int], seed: int, relation: str, group: str) -> list[int]:
    out = list(rows)
    random.Random(f"{seed}:{relation}:{group}").shuffle(out)
    return out


def _infeasible_error(ix: PoolIndex, spec: VariantSpec, size: int, missing: list[str], defaulted: bool) -> SlickError:
    weights = relation_weights(ix, spec.shares)
    largest = variant_max_size(ix, weights, spec.variant, Fraction(spec.unknown_ratio))
    asked = f"variant {spec.variant!r}"
    if spec.variant in RATIO_VARIANTS:
        asked += f", unknown_ratio {spec.unknown_ratio:g}"
    asked += f", |D| = {size}" + (" (the default size)" if defaulted else "") + f", shares {spec.shares!r}"
    fix = f"Largest |D| that works for this variant: {largest}" if largest else "No |D| >= 1 works for this variant"
    if largest:
        fix += f" (pass size={largest})"
    if defaulted and spec.shares == "pool":
        try:
            common = default_size_for(ix, spec.shares, VARIANTS)
            fix += f"; default_size(pool, variants=VARIANTS) = {common} is a |D| every variant supports"
        except SlickError:
            pass
    return SlickError(
        f"cannot build {variant_name(spec)} ({asked}): {'; '.join(missing)}. Pool per relation: {ix.describe()}. {fix}"
    )


def build_variant(pool: Dataset, spec: VariantSpec) -> Dataset:
    """Build one fine-tuning set from an annotated pool, in TRL prompt/completion form.

    Columns: prompt, completion (what the trainer reads), then id, relation, category, answers
    (the gold aliases) and is_idk for analysis. Rows are shuffled deterministically by seed.
    """
    if not isinstance(spec, VariantSpec):
        raise SlickError(f"spec must be a VariantSpec, got {type(spec).__name__}")
    if spec.variant == WHOLE:
        return whole_set(pool, spec)
    ix = index_pool(pool)
    weights = relation_weights(ix, spec.shares, warn=True)
    size = spec.size if spec.size is not None else default_size_for(ix, spec.shares)
    ratio = Fraction(spec.unknown_ratio)
    plan = draw_plan(ix, largest_remainder(weights, size), spec.variant, ratio)
    missing = shortfalls(ix, plan)
    if missing:
        raise _infeasible_error(ix, spec, size, missing, spec.size is None)

    chosen: list[int] = []
    for r in ix.relations:
        for group, k in plan[r].items():
            if k:
                chosen.extend(_ordering(ix.groups[r][group], spec.seed, r, group)[:k])
    chosen.sort(key=ix.ids.__getitem__)
    random.Random(f"{spec.seed}:order").shuffle(chosen)
    if spec.variant == "known":
        chosen = [i for i in chosen if ix.categories[i] != "Unknown"]
    questions, answers = column_values(pool, "question"), column_values(pool, "answers")
    rows: dict[str, list] = {name: [] for name in OUTPUT_FEATURES}
    for i in chosen:
        cat, gold = ix.categories[i], list(answers[i] or [])
        idk = spec.variant == "idk" and cat == "Unknown"
        if not gold and not idk:
            raise SlickError(f"example {ix.ids[i]!r} has an empty answer list")
        fields = {"question": questions[i], "relation": ix.relation_of[i], "id": ix.ids[i]}
        rows["prompt"].append(spec.prompt_template.format(**fields))
        rows["completion"].append(spec.completion_template.format(answer=spec.idk_answer if idk else gold[0], **fields))
        rows["id"].append(ix.ids[i])
        rows["relation"].append(ix.relation_of[i])
        rows["category"].append(cat)
        rows["answers"].append(gold)
        rows["is_idk"].append(idk)
    return Dataset(pa.Table.from_pydict(rows, schema=OUTPUT_FEATURES.arrow_schema))


def whole_set(pool: Dataset, spec: VariantSpec) -> Dataset:
    """Every row of an annotated set, in its order, as prompt/completion (`variant: whole`).

    For a `slick-hf filter` output: rows marked `slick_idk` get the IDK answer; rows SliCK did not
    judge (not short-form) keep their full answer and have no category.
    """
    if len(pool) == 0:
        raise SlickError("the set to fine-tune on is empty")
    cats = category_names(pool, allow_missing=True) or [None] * len(pool)
    idk = column_values(pool, "slick_idk") if "slick_idk" in pool.column_names else [False] * len(pool)
    rows: dict[str, list] = {name: [] for name in OUTPUT_FEATURES}
    for i, row in enumerate(pool.select_columns(["id", "relation", "question", "answers"])):
        fields = {"question": row["question"], "relation": row["relation"], "id": row["id"]}
        answer = spec.idk_answer if idk[i] else row["answers"][0]
        rows["prompt"].append(spec.prompt_template.format(**fields))
        rows["completion"].append(spec.completion_template.format(answer=answer, **fields))
        rows["category"].append(cats[i])
        rows["is_idk"].append(bool(idk[i]))
        rows["id"].append(row["id"])
        rows["relation"].append(row["relation"])
        rows["answers"].append(list(row["answers"]))
    return Dataset(pa.Table.from_pydict(rows, schema=OUTPUT_FEATURES.arrow_schema))


def variant_summary(ds: Dataset) -> dict:
    """Size, rows per category (all four, zeros included), per relation, and IDK rows of a variant."""
    cats = Counter(column_values(ds, "category"))
    rels = Counter(column_values(ds, "relation"))
    summary = {
        "size": len(ds),
        "categories": {c: cats.get(c, 0) for c in CATEGORIES},
        "known": sum(cats.get(c, 0) for c in KNOWN),
        "relations": {r: rels[r] for r in sorted(rels)},
        "idk": sum(column_values(ds, "is_idk")) if "is_idk" in ds.column_names else 0,
    }
    summary["unknown_share"] = summary["categories"]["Unknown"] / len(ds) if len(ds) else 0.0
    return summary
