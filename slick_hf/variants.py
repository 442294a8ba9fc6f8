"""Fine-tuning sets built from an annotated pool: D, D_Known, D_IDK, single-category, natural.

Every variant has a fixed size |D| split over relations by the same per-relation quotas n_r, so
each relation's share is constant across variants (SPEC.md, "Variants of D").

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
- Sampling: a relation's candidates of one group (Known, Unknown, a category, or all) are sorted
  by id and shuffled with `random.Random(f"{seed}:{relation}:{group}")`; a variant takes a prefix
  of that ordering. So a seed picks the same rows whatever the input's row order, D at ratios X
  and X' share as many rows as they can, and D_Known / D_IDK are derived from the very same D.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from .errors import SlickError
from .slick import CATEGORIES, KNOWN

logger = logging.getLogger(__name__)

VARIANTS = ("ratio", "known", "idk", "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "natural")
RATIO_VARIANTS = ("ratio", "known", "idk")
SHARES = ("pool", "paper")
RATIO_SWEEP = (0.0, 0.25, 0.5, 0.75, 1.0)
REQUIRED_COLUMNS = ("id", "relation", "question", "answers", "slick_category")
DEFAULT_PROMPT_TEMPLATE = "Answer the following question. {question}\n"
DEFAULT_COMPLETION_TEMPLATE = "{answer}"
ABBREV = {"HighlyKnown": "HK", "MaybeKnown": "MK", "WeaklyKnown": "WK", "Unknown": "Unk"}
OUTPUT_FEATURES = Features(
    {
        "prompt": Value("string"),
        "completion": Value("string"),
        "id": Value("string"),
        "relation": Value("string"),
        "category": Value("string"),
        "answers": Sequence(Value("string")),
        "is_idk": Value("bool"),
    }
)
_PROMPT_FIELDS = ("question", "relation", "id")
_COMPLETION_FIELDS = ("answer", "question", "relation", "id")


def _check_template(name: str, template: str, fields: tuple[str, ...]) -> None:
    try:
        template.format(**{f: "x" for f in fields})
    except KeyError as err:
        raise SlickError(
            f"{name} uses unknown field {{{err.args[0]}}}; available: {', '.join('{' + f + '}' for f in fields)}"
        ) from None
    except (ValueError, IndexError) as err:
        raise SlickError(f"{name} {template!r} is not a valid format string: {err}") from None


@dataclass(frozen=True)
class VariantSpec:
    """One fine-tuning set: which variant, its unknown ratio (ratio/known/idk only), |D|, seed, format.

    `size` is |D|, the size of the parent D: D_Known has (1 - unknown_ratio) * size rows.
    `size=None` means `default_size(pool, shares)`.
    """

    variant: str = "ratio"
    unknown_ratio: float = 0.5
    size: int | None = None
    shares: str = "pool"
    seed: int = 0
    idk_answer: str = "I don't know"
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    completion_template: str = DEFAULT_COMPLETION_TEMPLATE

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise SlickError(f"unknown variant {self.variant!r}; valid: {', '.join(VARIANTS)}")
        ratio = self.unknown_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
            raise SlickError(f"unknown_ratio must be a number in [0, 1], got {ratio!r}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int)):
            raise SlickError(f"size must be a positive integer or None, got {self.size!r}")
        if self.size is not None and self.size <= 0:
            raise SlickError(f"size |D| must be >= 1, got {self.size}")
        if self.shares not in SHARES:
            raise SlickError(f"unknown shares {self.shares!r}; valid: {', '.join(SHARES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SlickError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.idk_answer, str) or not self.idk_answer.strip():
            raise SlickError("idk_answer must be a non-empty string")
        _check_template("prompt_template", self.prompt_template, _PROMPT_FIELDS)
        _check_template("completion_template", self.completion_template, _COMPLETION_FIELDS)

    @property
    def name(self) -> str:
        return variant_name(self)

    def to_dict(self) -> dict:
        return asdict(self)


def variant_name(spec: VariantSpec | str, unknown_ratio: float | None = None) -> str:
    """A run-directory name: D_unk0.50, D_Known_unk0.50, D_IDK_unk0.50, D_HighlyKnown, D_Natural."""
    if isinstance(spec, VariantSpec):
        variant, ratio = spec.variant, spec.unknown_ratio
    else:
        variant, ratio = spec, 0.5 if unknown_ratio is None else unknown_ratio
    if variant not in VARIANTS:
        raise SlickError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    prefix = {"ratio": "D", "known": "D_Known", "idk": "D_IDK"}
    if variant in prefix:
        return f"{prefix[variant]}_unk{ratio:.2f}"
    return "D_Natural" if variant == "natural" else f"D_{variant}"


# ---------------------------------------------------------------------------------------------
# The pool index: row indices per relation and group, each list sorted by id.


@dataclass
class _Pool:
    relations: list[str]
    groups: dict[str, dict[str, list[int]]]  # relation -> group -> row indices sorted by id
    categories: list[str]  # category name per pool row
    ids: list[str]  # id per pool row
    relation_of: list[str]  # relation per pool row

    def count(self, relation: str, group: str) -> int:
        return len(self.groups[relation][group])

    def counts(self) -> dict[str, dict[str, int]]:
        return {r: {c: self.count(r, c) for c in CATEGORIES} for r in self.relations}

    def describe(self) -> str:
        return "; ".join(
            f"{r}: " + ", ".join(f"{ABBREV[c]} {self.count(r, c)}" for c in CATEGORIES) for r in self.relations
        )


def _column(ds: Dataset, name: str) -> list:
    """A whole column as a Python list (slicing the lazy Column; indexing it per row is slow)."""
    return ds[name][:]


def _category_names(pool: Dataset) -> list[str]:
    feature = pool.features["slick_category"]
    values = _column(pool, "slick_category")
    if isinstance(feature, ClassLabel):
        names = feature.names
        try:
            out = [names[v] if v is not None and v >= 0 else None for v in values]
        except IndexError:
            raise SlickError("slick_category holds labels outside its ClassLabel names") from None
    elif isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        out = list(values)
    else:
        raise SlickError(f"column 'slick_category' must be a ClassLabel or a string, found {feature}")
    bad = Counter(v for v in out if v not in CATEGORIES)
    if bad:
        shown = ", ".join(f"{v!r} x{n}" for v, n in bad.most_common(5))
        raise SlickError(f"slick_category has values outside {', '.join(CATEGORIES)}: {shown}")
    return out


def _index(pool: Dataset) -> _Pool:
    if not isinstance(pool, Dataset):
        raise SlickError(f"the pool must be a datasets.Dataset, got {type(pool).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in pool.column_names]
    if missing:
        hint = " (not annotated? run `slick-hf annotate`)" if "slick_category" in missing else ""
        raise SlickError(
            f"annotated pool: missing column(s) {', '.join(missing)}; found {', '.join(pool.column_names)}{hint}"
        )
    if len(pool) == 0:
        raise SlickError("the annotated pool is empty")
    ids = [str(i) for i in _column(pool, "id")]
    if len(set(ids)) != len(ids):
        raise SlickError("annotated pool: column 'id' has duplicate values; ids must be unique")
    relations = _column(pool, "relation")
    if any(not isinstance(r, str) or not r for r in relations):
        raise SlickError("annotated pool: column 'relation' must hold non-empty strings")
    cats = _category_names(pool)
    groups: dict[str, dict[str, list[int]]] = {}
    for i in sorted(range(len(ids)), key=ids.__getitem__):
        g = groups.get(relations[i])
        if g is None:
            g = groups[relations[i]] = {k: [] for k in (*CATEGORIES, "Known", "all")}
        g[cats[i]].append(i)
        g["all"].append(i)
        if cats[i] != "Unknown":
            g["Known"].append(i)
    return _Pool(sorted(groups), groups, cats, ids, relations)


def pool_counts(pool: Dataset) -> dict[str, dict[str, int]]:
    """Rows per relation and SliCK category: {relation: {category: count}}."""
    return _index(pool).counts()


# ---------------------------------------------------------------------------------------------
# Quotas and plans (pure integer arithmetic).


def _weights(ix: _Pool, shares: str, warn: bool = False) -> dict[str, int]:
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


def _largest_remainder(weights: Mapping[str, int], size: int) -> dict[str, int]:
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
    ix = _index(pool)
    return _largest_remainder(_weights(ix, shares), size)


def _unknown_counts(ix: _Pool, quotas: Mapping[str, int], ratio: Fraction) -> dict[str, int]:
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


def _plan(ix: _Pool, quotas: Mapping[str, int], variant: str, ratio: Fraction) -> dict[str, dict[str, int]]:
    """Rows to draw per relation and group."""
    if variant in RATIO_VARIANTS:
        unk = _unknown_counts(ix, quotas, ratio)
        return {r: {"Known": n - unk[r], "Unknown": unk[r]} for r, n in quotas.items()}
    group = "all" if variant == "natural" else variant
    return {r: {group: n} for r, n in quotas.items()}


def _shortfalls(ix: _Pool, plan: Mapping[str, Mapping[str, int]]) -> list[str]:
    return [
        f"{r} needs {k} {g if g != 'all' else 'rows'}, has {ix.count(r, g)}"
        for r, need in plan.items()
        for g, k in need.items()
        if k > ix.count(r, g)
    ]


def _feasible(ix: _Pool, weights, variant: str, ratio: Fraction, size: int) -> bool:
    return not _shortfalls(ix, _plan(ix, _largest_remainder(weights, size), variant, ratio))


def _relation_caps(ix: _Pool, r: str, variant: str, ratio: Fraction) -> tuple[int, int]:
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


def _max_size(ix: _Pool, weights: Mapping[str, int], caps: Mapping[str, tuple[int, int]], feasible) -> int:
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


def _variant_max_size(ix: _Pool, weights: Mapping[str, int], variant: str, ratio: Fraction) -> int:
    caps = {r: _relation_caps(ix, r, variant, ratio) for r in ix.relations}
    return _max_size(ix, weights, caps, lambda n: _feasible(ix, weights, variant, ratio, n))


def _default_size(ix: _Pool, shares: str, variants: Iterable[str] | None = None) -> int:
    weights = _weights(ix, shares)
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
        lambda n: all(q <= caps[r] for r, q in _largest_remainder(weights, n).items()),
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
    return _default_size(_index(pool), shares, variants)


# ---------------------------------------------------------------------------------------------
# Building a variant.


def _ordering(rows: list[int], seed: int, relation: str, group: str) -> list[int]:
    out = list(rows)
    random.Random(f"{seed}:{relation}:{group}").shuffle(out)
    return out


def _infeasible_error(ix: _Pool, spec: VariantSpec, size: int, shortfalls: list[str], defaulted: bool) -> SlickError:
    weights = _weights(ix, spec.shares)
    largest = _variant_max_size(ix, weights, spec.variant, Fraction(spec.unknown_ratio))
    asked = f"variant {spec.variant!r}"
    if spec.variant in RATIO_VARIANTS:
        asked += f", unknown_ratio {spec.unknown_ratio:g}"
    asked += f", |D| = {size}" + (" (the default size)" if defaulted else "") + f", shares {spec.shares!r}"
    fix = f"Largest |D| that works for this variant: {largest}" if largest else "No |D| >= 1 works for this variant"
    if largest:
        fix += f" (pass size={largest})"
    if defaulted and spec.shares == "pool":
        try:
            common = _default_size(ix, spec.shares, VARIANTS)
            fix += f"; default_size(pool, variants=VARIANTS) = {common} is a |D| every variant supports"
        except SlickError:
            pass
    return SlickError(
        f"cannot build {variant_name(spec)} ({asked}): {'; '.join(shortfalls)}. "
        f"Pool per relation: {ix.describe()}. {fix}"
    )


def build_variant(pool: Dataset, spec: VariantSpec) -> Dataset:
    """Build one fine-tuning set from an annotated pool, in TRL prompt/completion form.

    Columns: prompt, completion (what the trainer reads), then id, relation, category, answers
    (the gold aliases) and is_idk for analysis. Rows are shuffled deterministically by seed.
    """
    if not isinstance(spec, VariantSpec):
        raise SlickError(f"spec must be a VariantSpec, got {type(spec).__name__}")
    ix = _index(pool)
    weights = _weights(ix, spec.shares, warn=True)
    size = spec.size if spec.size is not None else _default_size(ix, spec.shares)
    ratio = Fraction(spec.unknown_ratio)
    plan = _plan(ix, _largest_remainder(weights, size), spec.variant, ratio)
    shortfalls = _shortfalls(ix, plan)
    if shortfalls:
        raise _infeasible_error(ix, spec, size, shortfalls, spec.size is None)

    chosen: list[int] = []
    for r in ix.relations:
        for group, k in plan[r].items():
            if k:
                chosen.extend(_ordering(ix.groups[r][group], spec.seed, r, group)[:k])
    chosen.sort(key=ix.ids.__getitem__)
    random.Random(f"{spec.seed}:order").shuffle(chosen)
    if spec.variant == "known":
        chosen = [i for i in chosen if ix.categories[i] != "Unknown"]
    questions, answers = _column(pool, "question"), _column(pool, "answers")
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


def variant_summary(ds: Dataset) -> dict:
    """Size, rows per category (all four, zeros included), per relation, and IDK rows of a variant."""
    cats = Counter(_column(ds, "category"))
    rels = Counter(_column(ds, "relation"))
    summary = {
        "size": len(ds),
        "categories": {c: cats.get(c, 0) for c in CATEGORIES},
        "known": sum(cats.get(c, 0) for c in KNOWN),
        "relations": {r: rels[r] for r in sorted(rels)},
        "idk": sum(_column(ds, "is_idk")) if "is_idk" in ds.column_names else 0,
    }
    summary["unknown_share"] = summary["categories"]["Unknown"] / len(ds) if len(ds) else 0.0
    return summary


# ---------------------------------------------------------------------------------------------
# Loading an annotated dataset (local Hub-style folder or Hub id).


def load_annotated(source: str, config: str | None = None, split: str | None = "train") -> Dataset | DatasetDict:
    """Load one split (or, with `split=None`, all) of an annotated dataset, checking its columns.

    A local folder is always read afresh and unchecked against `datasets`' cache, which is keyed
    by the folder's path: it would otherwise miss splits annotated since, or reject a folder
    rewritten with other split sizes.
    """
    import datasets

    where = f"{source}" + (f" (config {config})" if config else "")
    local = {"download_mode": "force_redownload", "verification_mode": "no_checks"}
    try:
        loaded = datasets.load_dataset(
            str(source), config, split=split, **(local if Path(str(source)).is_dir() else {})
        )
    except ValueError as err:
        raise _load_error(source, config, split, err) from None
    except (FileNotFoundError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SlickError(
            f"annotated dataset not found: {source} is neither a dataset folder nor a reachable Hub dataset ({first})"
        ) from None
    for name, ds in loaded.items() if isinstance(loaded, DatasetDict) else [(split, loaded)]:
        missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
        if missing:
            hint = " (not annotated? run `slick-hf annotate`)" if "slick_category" in missing else ""
            raise SlickError(
                f"{where} split {name}: missing column(s) {', '.join(missing)}; "
                f"found {', '.join(ds.column_names)}{hint}"
            )
    return loaded


def _load_error(source: str, config: str | None, split: str, err: Exception) -> SlickError:
    import datasets

    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    try:
        configs = datasets.get_dataset_config_names(str(source))
    except Exception:  # the original error is the better message then
        return SlickError(f"could not load {source}: {first}")
    if config is None and len(configs) > 1:
        return SlickError(
            f"{source} has several configs (one per annotating model); pick one with config: {', '.join(configs)}"
        )
    if config is not None and config not in configs:
        return SlickError(f"{source} has no config {config!r}; available configs: {', '.join(configs)}")
    try:
        splits = datasets.get_dataset_split_names(str(source), config)
    except Exception:
        return SlickError(f"could not load {source}: {first}")
    if split not in splits:
        return SlickError(
            f"{source}" + (f" config {config!r}" if config else "") + f" has no split {split!r}; "
            f"available splits: {', '.join(splits)}"
        )
    return SlickError(f"could not load {source}: {first}")


# ---------------------------------------------------------------------------------------------
# Command line: `slick-hf variants` (wired in cli.py via `add_variants_parser`).


def add_variants_parser(sub) -> None:
    """Add the `variants` subcommand to the CLI's subparsers."""
    p = sub.add_parser("variants", help="build fine-tuning sets (D, D_Known, D_IDK, ...) from an annotated dataset")
    p.add_argument("source", help="annotated dataset: a Hub-style folder or a Hub dataset id")
    p.add_argument("--config", help="dataset config (one per annotating model)")
    p.add_argument("--split", default="train")
    p.add_argument("--variant", default="ratio", help=f"comma-separated, from: {', '.join(VARIANTS)}, or all")
    p.add_argument(
        "--unknown-ratio",
        help="comma-separated ratios in [0, 1] for ratio/known/idk (default 0.5; with --variant all: 0,.25,.5,.75,1)",
    )
    p.add_argument(
        "--size",
        type=int,
        help="|D| (default: the largest |D| at which every unknown ratio is feasible; "
        "with --variant all, at which every variant is)",
    )
    p.add_argument("--shares", choices=SHARES, default="pool")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--idk-answer", default="I don't know")
    p.add_argument("--output-dir", type=Path, default=Path("outputs/variants"))
    p.set_defaults(func=run_variants_command)


def run_variants_command(args: argparse.Namespace) -> None:
    """Write each requested variant as <output-dir>/<name>/train.parquet plus summary.json."""
    names = list(VARIANTS) if args.variant == "all" else [v.strip() for v in args.variant.split(",") if v.strip()]
    if not names:
        raise SlickError(f"--variant is empty; valid: {', '.join(VARIANTS)}, or all")
    if args.unknown_ratio is None:
        ratios = list(RATIO_SWEEP) if args.variant == "all" else [0.5]
    else:
        try:
            ratios = [float(x) for x in args.unknown_ratio.split(",") if x.strip()]
        except ValueError:
            raise SlickError(f"--unknown-ratio must be comma-separated numbers, got {args.unknown_ratio!r}") from None
        if not ratios:
            raise SlickError("--unknown-ratio is empty")
    pool = load_annotated(args.source, args.config, args.split)
    size = args.size
    if size is None:
        size = default_size(pool, args.shares, VARIANTS if args.variant == "all" else None)
    specs = [
        VariantSpec(v, x, size, args.shares, args.seed, args.idk_answer)
        for v in names
        for x in (ratios if v in RATIO_VARIANTS else ratios[:1])
    ]
    built = [(spec, build_variant(pool, spec)) for spec in specs]  # every check before any write
    print(f"|D| = {size} (shares {args.shares!r}, seed {args.seed})")
    for spec, ds in built:
        out = Path(args.output_dir) / spec.name
        out.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(out / "train.parquet"))
        summary = {
            "spec": spec.to_dict(),
            "source": args.source,
            "config": args.config,
            **variant_summary(ds),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"{spec.name}: {len(ds)} rows -> {out}")
