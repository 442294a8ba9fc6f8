"""What an annotated pool can supply: rows per relation and category, quotas, feasibility, |D|.

Every variant has a fixed size |D| split over relations by the same per-relation quotas n_r, so
each relation's share is constant across variants (as in the paper).

- Relation quotas: `shares="pool"` (default) makes n_r proportional to the relation's row count
  in the pool; `shares="paper"` makes it proportional to the relation's smallest category count
  (the paper's rule; relations lacking a category get no rows). Integer quotas by largest
  remainder, ties broken by relation name.
- Unknown counts for ratio X: round(X |D|) Unknown rows in all, apportioned over relations by
  largest remainder of X n_r (each relation gets floor or ceil of X n_r; ties prefer a relation
  that can supply the extra row, then the larger remainder, then the relation name).
- Default |D| (`default_size`): with `shares="pool"` the largest |D| at which every ratio
  X in [0, 1] is feasible, i.e. n_r <= min(Known_r, Unknown_r) for every relation, so a sweep
  over X uses one |D|; with `shares="paper"` the paper's |D|: the sum over relations of the
  smallest category count, at which every variant (single-category ones too) is feasible.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from datasets import Dataset

from slick_hf.core.schema import category_names, check_annotated_columns
from slick_hf.core.slick import CATEGORIES
from slick_hf.errors import SlickError
from slick_hf.variants.spec import RATIO_VARIANTS, SHARES, VARIANTS

logger = logging.getLogger(__name__)
ABBREV = {"HighlyKnown": "HK", "MaybeKnown": "MK", "WeaklyKnown": "WK", "Unknown": "Unk"}


@dataclass
class PoolIndex:
    """An annotated pool indexed for drawing: row indices per relation and group, each sorted by id."""

    relations: list[str]
    groups: dict[str, dict[str, list[int]]]  # relation -> group -> row indices sorted by id
    categories: list[str]  # category name per pool row
    ids: list[str]  # id per pool row
    relation_of: list[str]  # relation per pool row

    def count(self, relation: str, group: str) -> int:
        """Rows of `relation` in `group` (a category, "Known" or "all")."""
        return len(self.groups[relation][group])

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per relation and category."""
        return {r: {c: self.count(r, c) for c in CATEGORIES} for r in self.relations}

    def describe(self) -> str:
        """One line of counts per relation, for error messages."""
        return "; ".join(
            f"{r}: " + ", ".join(f"{ABBREV[c]} {self.count(r, c)}" for c in CATEGORIES) for r in self.relations
        )


def column_values(ds: Dataset, name: str) -> list:
    """A whole column as a Python list (slicing the lazy Column; indexing it per row is slow)."""
    return ds[name][:]


def index_pool(pool: Dataset) -> PoolIndex:
    """Check an annotated pool's columns and index its rows by relation and category."""
    if not isinstance(pool, Dataset):
        raise SlickError(f"the pool must be a datasets.Dataset, got {type(pool).__name__}")
    check_annotated_columns(pool, "annotated pool")
    if len(pool) == 0:
        raise SlickError("the annotated pool is empty")
    ids = [str(i) for i in column_values(pool, "id")]
    if len(set(ids)) != len(ids):
        raise SlickError("annotated pool: column 'id' has duplicate values; ids must be unique")
    relations = column_values(pool, "relation")
    if any(not isinstance(r, str) or not r for r in relations):
        raise SlickError("annotated pool: column 'relation' must hold non-empty strings")
    cats = category_names(pool, allow_missing=True)  # rows SliCK did not judge (None) are never drawn
    groups: dict[str, dict[str, list[int]]] = {}
    for i in sorted(range(len(ids)), key=ids.__getitem__):
        if cats[i] is None:
            continue
        g = groups.get(relations[i])
        if g is None:
            g = groups[relations[i]] = {k: [] for k in (*CATEGORIES, "Known", "all")}
        g[cats[i]].append(i)
        g["all"].append(i)
        if cats[i] != "Unknown":
            g["Known"].append(i)
    return PoolIndex(sorted(groups), groups, cats, ids, relations)


def pool_counts(pool: Dataset) -> dict[str, dict[str, int]]:
    """Rows per relation and SliCK category: {relation: {category: count}}."""
    return index_pool(pool).counts()


# ---------------------------------------------------------------------------------------------
# Quotas and plans (pure integer arithmetic).


def relation_weights(ix: PoolIndex, shares: str, warn: bool = False) -> dict[str, int]:
    if shares not in SHARES:
        raise SlickError(f"unknown shares {shares!r}; valid: {', '.join(SHARES)}")
    if shares == "pool":
        return {r: ix.count(r, "all") for r in ix.relations}
    weights = {r: min(ix.count(r, c) for c in CATEGORIES) for r in ix.relations}
    if not any(weights.values()):
        raise SlickError(
            "shares='paper' gives every relation a share of 0: each lacks at least one category "
            "(the paper's |D| is the sum of the smallest category counts). "
            f"Pool per relation: {ix.describe()}. "
            "Use shares='pool'"
        )
    dropped = [r for r, w in weights.items() if w == 0]
    if dropped and warn:
        logger.warning(
            "shares='paper': relation(s) %s lack a category and get no rows in any variant",
            ", ".join(dropped),
        )
    return weights


def largest_remainder(weights: Mapping[str, int], size: int) -> dict[str, int]:
    total = sum(weights.values())
    quotas = {r: size * w // total for r, w in weights.items()}
    left = size - sum(quotas.values())
    order = sorted((r for r, w in weights.items() if w), key=lambda r: (-(size * weights[r] % total), r))
    for r in order[:left]:
        quotas[r] += 1
    return quotas


def relation_quotas(pool: Dataset, size: int, shares: str = "pool") -> dict[str, int]:
    """The per-relation quotas n_r (summing to `size`) every variant of that |D| uses."""
    if size <= 0:
        raise SlickError(f"size |D| must be >= 1, got {size}")
    ix = index_pool(pool)
    return largest_remainder(relation_weights(ix, shares), size)


def _unknown_counts(ix: PoolIndex, quotas: Mapping[str, int], ratio: Fraction) -> dict[str, int]:
    size = sum(quotas.values())
    total = math.floor(ratio * size + Fraction(1, 2))
    exact = {r: ratio * n for r, n in quotas.items()}
    counts = {r: math.floor(x) for r, x in exact.items()}
    left = total - sum(counts.values())

    def key(r: str) -> tuple:
        need_up = quotas[r] - counts[r] > ix.count(r, "Known")
        cannot_up = counts[r] + 1 > ix.count(r, "Unknown")
        return (0 if need_up else 2 if cannot_up else 1, -(exact[r] - counts[r]), r)

    for r in sorted((r for r in quotas if exact[r] != counts[r]), key=key)[:left]:
        counts[r] += 1
    return counts


def draw_plan(ix: PoolIndex, quotas: Mapping[str, int], variant: str, ratio: Fraction) -> dict[str, dict[str, int]]:
    """Rows to draw per relation and group."""
    if variant in RATIO_VARIANTS:
        unk = _unknown_counts(ix, quotas, ratio)
        return {r: {"Known": n - unk[r], "Unknown": unk[r]} for r, n in quotas.items()}
    group = "all" if variant == "natural" else variant
    return {r: {group: n} for r, n in quotas.items()}


def shortfalls(ix: PoolIndex, plan: Mapping[str, Mapping[str, int]]) -> list[str]:
    return [
        f"{r} needs {k} {g if g != 'all' else 'rows'}, has {ix.count(r, g)}"
        for r, need in plan.items()
        for g, k in need.items()
        if k > ix.count(r, g)
    ]


def is_feasible(ix: PoolIndex, weights, variant: str, ratio: Fraction, size: int) -> bool:
    """Whether the variant can be drawn at |D| = size."""
    return not shortfalls(ix, draw_plan(ix, largest_remainder(weights, size), variant, ratio))


def _relation_caps(ix: PoolIndex, r: str, variant: str, ratio: Fraction) -> tuple[int, int]:
    """(lo, hi) bounds on n_r: every n_r <= lo is feasible, no n_r > hi is."""
    if variant in CATEGORIES or variant == "natural":
        c = ix.count(r, "all" if variant == "natural" else variant)
        return c, c
    known, unknown = ix.count(r, "Known"), ix.count(r, "Unknown")
    if ratio == 0:
        return known, known
    if ratio == 1:
        return unknown, unknown
    # u_r is floor or ceil of X n_r: floor(X n) <= U and floor((1-X) n) <= K are necessary,
    # ceil(X n) <= U and ceil((1-X) n) <= K sufficient.
    hi = min(math.ceil((unknown + 1) / ratio) - 1, math.ceil((known + 1) / (1 - ratio)) - 1)
    lo = min(math.floor(unknown / ratio), math.floor(known / (1 - ratio)))
    return lo, hi


def _max_size(ix: PoolIndex, weights: Mapping[str, int], caps: Mapping[str, tuple[int, int]], feasible) -> int:
    """The largest |D| with feasible(|D|) (0 if none), scanning down from a proven upper bound.

    Quotas by largest remainder lie between floor and ceil of |D| w_r / W, which bounds the scan.
    """
    total = sum(weights.values())
    active = [r for r, w in weights.items() if w]
    hi = min(-(-(caps[r][1] + 1) * total // weights[r]) - 1 for r in active)
    lo = min(caps[r][0] * total // weights[r] for r in active)
    for size in range(hi, lo, -1):
        if feasible(size):
            return size
    return max(lo, 0)


def variant_max_size(ix: PoolIndex, weights: Mapping[str, int], variant: str, ratio: Fraction) -> int:
    caps = {r: _relation_caps(ix, r, variant, ratio) for r in ix.relations}
    return _max_size(ix, weights, caps, lambda n: is_feasible(ix, weights, variant, ratio, n))


def default_size_for(ix: PoolIndex, shares: str, variants: Iterable[str] | None = None) -> int:
    weights = relation_weights(ix, shares)
    if shares == "paper":
        return sum(weights.values())
    wanted = RATIO_VARIANTS if variants is None else tuple(variants)
    for v in wanted:
        if v not in VARIANTS:
            raise SlickError(f"unknown variant {v!r}; valid: {', '.join(VARIANTS)}")

    def cap(r: str, v: str) -> int:
        if v in RATIO_VARIANTS:
            return min(ix.count(r, "Known"), ix.count(r, "Unknown"))
        return ix.count(r, "all" if v == "natural" else v)

    caps = {r: min(cap(r, v) for v in wanted) for r in ix.relations}
    blocking = [r for r in ix.relations if caps[r] == 0]
    if blocking:
        # Only rounding could give such a relation a quota of 0, at a |D| too small to use.
        what = "no Known or no Unknown examples" if variants is None else "no examples for a requested variant"
        raise SlickError(
            f"no default |D| fits {', '.join(wanted)} with shares='pool': "
            f"relation(s) {', '.join(blocking)} have {what}. Pool per relation: {ix.describe()}. "
            "Drop those relations from the pool, or pass an explicit size"
        )
    size = _max_size(
        ix,
        weights,
        {r: (c, c) for r, c in caps.items()},
        lambda n: all(q <= caps[r] for r, q in largest_remainder(weights, n).items()),
    )
    return size


def default_size(pool: Dataset, shares: str = "pool", variants: Iterable[str] | None = None) -> int:
    """The |D| used when `VariantSpec.size` is None.

    shares="pool": the largest |D| at which every unknown ratio X in [0, 1] is feasible, i.e. each
    relation's quota n_r <= min(Known_r, Unknown_r); so RATIO=0 and RATIO=1 runs share one |D|.
    Pass `variants` (e.g. VARIANTS) for the largest |D| at which all of those variants are feasible.
    shares="paper": the paper's |D|, the sum over relations of the smallest category count, at
    which every variant is feasible.
    """
    return default_size_for(index_pool(pool), shares, variants)
