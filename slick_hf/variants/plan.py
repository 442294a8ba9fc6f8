"""The sweep's plan: every variant of the paper at one |D|, and the choice of that |D| on a pool.

`sweep_plan`: D at 0, 25, 50, 75, 100 % Unknown; D_Known at 25, 50, 75 % (D_Known at 0 % is D
itself, at 100 % it is empty); D_HighlyKnown, D_MaybeKnown, D_WeaklyKnown, D_Unknown; D_Natural;
D_IDK at 50 %. `choose_size`: the given |D| (runs infeasible at it are named and dropped), else
the largest |D| at which every planned variant is feasible; a variant that no |D| supports is
named and dropped.
"""

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable, Sequence

from datasets import Dataset

from slick_hf.core.schema import category_names
from slick_hf.core.slick import CATEGORIES, KNOWN
from slick_hf.errors import SlickError
from slick_hf.variants.build import build_variant
from slick_hf.variants.pool import default_size
from slick_hf.variants.spec import RATIO_SWEEP, VARIANTS, VariantSpec, variant_name

logger = logging.getLogger(__name__)
IDK_RATIO = 0.5


def sweep_plan(
    ratios: Sequence[float] = RATIO_SWEEP, idk_ratio: float = IDK_RATIO, kinds: Iterable[str] | None = None
) -> list[tuple[str, float]]:
    """(variant, unknown_ratio) of every run of the sweep, in run order; `kinds` keeps only those variants."""
    plan = [("ratio", float(x)) for x in ratios]
    plan += [("known", float(x)) for x in ratios if 0 < x < 1]
    plan += [(c, 0.5) for c in CATEGORIES] + [("natural", 0.5), ("idk", float(idk_ratio))]
    if kinds is not None:
        kinds = set(kinds)
        bad = kinds - set(VARIANTS)
        if bad:
            raise SlickError(f"unknown variant kind(s) {', '.join(sorted(bad))}; valid: {', '.join(VARIANTS)}")
        plan = [(v, x) for v, x in plan if v in kinds]
    return plan


def plan_names(plan: Iterable[tuple[str, float]]) -> list[str]:
    """The run names of a plan, in order."""
    return [variant_name(v, x) for v, x in plan]


def infeasible_at(pool: Dataset, base: VariantSpec, plan: Sequence[tuple[str, float]], size: int) -> dict[str, str]:
    """Run name -> why it cannot be built at |D| = size (empty when every run can); `base` gives the rest."""
    out = {}
    for v, x in plan:
        try:
            build_variant(pool, dataclasses.replace(base, variant=v, unknown_ratio=x, size=size))
        except SlickError as err:
            out[variant_name(v, x)] = str(err)
    return out


def lacking_relations(pool: Dataset, kinds: Iterable[str]) -> dict[str, list[str]]:
    """Variant kind -> the relations of the pool without the rows it needs (Known and Unknown, or a category)."""
    counts: dict[str, Counter] = {}
    for rel, cat in zip(pool["relation"][:], category_names(pool, allow_missing=True), strict=True):
        if cat is None:  # not judged by SliCK (not short-form, a held-out exemplar): never drawn
            continue
        counts.setdefault(rel, Counter())[cat] += 1
        counts[rel]["Known" if cat in KNOWN else "Unknown*"] += 1
    need = {"ratio": ("Known", "Unknown*"), "known": ("Known", "Unknown*"), "idk": ("Known", "Unknown*")}
    out = {}
    for kind in kinds:
        groups = need.get(kind, () if kind == "natural" else (kind,))
        missing = sorted(r for r, c in counts.items() if any(c[g] == 0 for g in groups))
        if missing:
            out[kind] = missing
    return out


def choose_size(
    pool: Dataset, base: VariantSpec, plan: Sequence[tuple[str, float]]
) -> tuple[int, list[tuple[str, float]], dict[str, str], str]:
    """(|D|, runnable plan, {infeasible run: reason}, how |D| was chosen).

    A variant kind that no |D| supports on this pool is named and dropped first. A given
    `base.size` is kept, and the runs infeasible at it are named and dropped; without one, |D| is
    the largest at which every remaining run is feasible.
    """
    kinds = list(dict.fromkeys(v for v, _ in plan))
    blocked: dict[str, str] = {}
    lacking = lacking_relations(pool, kinds)
    for kind in kinds:
        try:
            default_size(pool, base.shares, variants=[kind])
        except SlickError as err:
            blocked[kind] = str(err)
            if kind in lacking:
                what = {"ratio": "Known or no Unknown", "known": "Known or no Unknown", "idk": "Known or no Unknown"}
                blocked[kind] = (
                    f"relation(s) {', '.join(lacking[kind])} of the train split have no "
                    f"{what.get(kind, kind)} rows, and every variant keeps each relation's share of D; "
                    "leave them out of D with --sweep-relations to run it"
                )
    usable = [k for k in kinds if k not in blocked]
    if not usable:
        raise SlickError("no planned variant is feasible on this pool: " + "; ".join(blocked.values()))
    runnable = [(v, x) for v, x in plan if v in usable]
    infeasible = {variant_name(v, x): blocked[v] for v, x in plan if v in blocked}
    given = base.size
    if given is not None:
        bad = infeasible_at(pool, base, runnable, given)
        runnable = [(v, x) for v, x in runnable if variant_name(v, x) not in bad]
        if not runnable:
            raise SlickError(f"no planned variant is feasible at train_size {given}: " + "; ".join(bad.values()))
        how = f"train_size {given} (given"
        how += f"; infeasible at it: {', '.join(bad)})" if bad else "; every planned variant is feasible)"
        return given, runnable, infeasible | bad, how
    size = default_size(pool, base.shares, variants=usable)
    infeasible |= infeasible_at(pool, base, runnable, size)  # rounding corner cases
    runnable = [(v, x) for v, x in runnable if variant_name(v, x) not in infeasible]
    how = f"default_size(pool, {base.shares!r}, variants={usable}) = {size}, "
    how += "the largest |D| at which all of them are feasible"
    return size, runnable, infeasible, how
