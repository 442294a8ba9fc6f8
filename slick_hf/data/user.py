"""Questions for annotation from a built-in source (geo, entityquestions) or a user's dataset.

A user's dataset is read in its own format (`slick_hf.data.formats`). Its native split names work:
`validation` is `dev`. Few-shot exemplars come from `--exemplar-split`, by default dev when there
is one, else a held-out slice of the first annotated split: per relation, the
min(num_prompts x (num_shots + 1), half its judged rows) rows with the smallest SHA-256 of
`"<seed>:<id>"`. Held-out rows stay in the split, marked `slick_skipped`, and are never a target.
"""

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from datasets import Dataset, DatasetDict, Value

from slick_hf.core.schema import validate_questions
from slick_hf.core.slick import SlickConfig
from slick_hf.data.formats import EXEMPLAR, SKIP_COLUMN, DataFormat, convert_split, detect_format
from slick_hf.data.load import DATASETS, load_questions
from slick_hf.errors import SlickError, first_line
from slick_hf.hub import require_hub


class QuestionSplits(NamedTuple):
    """What annotation reads: the splits, the rows exemplars are drawn from, and what was prepared."""

    questions: DatasetDict
    exemplar_rows: Dataset
    report: str
    exemplars_from: str


def load_question_splits(
    dataset: str,
    data_dir: Path | None,
    splits: Sequence[str],
    relations: str | Sequence[str] | None,
    limit_per_relation: int | None,
    data_format: DataFormat | None = None,
    slick: SlickConfig | None = None,
) -> QuestionSplits:
    """The splits to annotate (limited), the exemplar rows (full dev, or held out) and a preparation report."""
    if limit_per_relation is not None and limit_per_relation < 1:
        raise SlickError(f"--limit-per-relation must be >= 1, got {limit_per_relation}")
    if dataset in DATASETS:
        wanted, report = load_questions(dataset, data_dir, splits, relations, limit_per_relation)
        dev = wanted["dev"] if "dev" in wanted and limit_per_relation is None else None
        if dev is None:
            dev = load_questions(dataset, data_dir, ("dev",), relations)[0]["dev"]
        return QuestionSplits(wanted, dev, report.summary(), "the dev split")
    return _load_user_dataset(dataset, splits, relations, limit_per_relation, data_format or DataFormat(), slick)


def _dev_name(split: str) -> str:
    return "dev" if split == "validation" else split


def _load_user_dataset(name: str, splits, relations, limit, fmt: DataFormat, slick) -> QuestionSplits:
    """A local folder or Hub dataset in one of the formats of `slick_hf.data.formats`."""
    from datasets import load_dataset

    slick = slick or SlickConfig()
    if not Path(name).exists():
        require_hub(f"dataset {name!r}")
    try:
        dd = load_dataset(name, fmt.dataset_config)
    except Exception as err:  # datasets raises many types for "not found / unreadable"
        raise SlickError(
            f"cannot load dataset {name!r}: {first_line(err)} (built-in datasets: {', '.join(DATASETS)})"
        ) from None
    dd = DatasetDict({_dev_name(s) if "dev" not in dd else s: ds for s, ds in dd.items()})
    wanted = list(dict.fromkeys(_dev_name(s) for s in splits))
    source = _dev_name(fmt.exemplar_split) if fmt.exemplar_split else ("dev" if "dev" in dd else wanted[0])
    for split in [*wanted, source]:
        if split not in dd:
            raise SlickError(f"dataset {name!r} has no split {split!r}; it has {', '.join(dd)}")
    resolved = fmt.dataset_format
    if resolved == "auto":
        resolved = detect_format(dd[wanted[0]].features, name)
    try:
        rows = {s: convert_split(dd[s], resolved, fmt, s, name) for s in dict.fromkeys([*wanted, source])}
    except UnicodeDecodeError as err:
        raise SlickError(
            f"dataset {name!r} has text that is not UTF-8 ({err.reason}); save its files as UTF-8"
        ) from None
    if relations is not None:
        rows = _only_relations(rows, relations, name)
    if source in wanted:
        held = _held_out(rows[source], slick)
        skipped = [EXEMPLAR if i in held else s for i, s in enumerate(rows[source][SKIP_COLUMN])]
        rows[source] = (
            rows[source].remove_columns(SKIP_COLUMN).add_column(SKIP_COLUMN, skipped, feature=Value("string"))
        )
        exemplar_rows = rows[source].select(sorted(held))
        exemplars_from = f"{len(held)} rows held out of the {source} split (marked slick_skipped = {EXEMPLAR!r})"
    else:
        exemplar_rows = _judged(rows[source])
        exemplars_from = f"the {source} split"
    for split, ds in rows.items():
        _check_ids(ds, f"{name} [{split}]")
        validate_questions(_judged(ds), f"{name} [{split}]")
    out = DatasetDict({s: _limit(rows[s], limit) for s in wanted})
    report = f"{name} (format {resolved}): " + "; ".join(f"{s}: {_describe(ds)}" for s, ds in out.items())
    return QuestionSplits(out, exemplar_rows, report, exemplars_from)


def _judged(ds: Dataset) -> Dataset:
    """The rows SliCK judges (not skipped)."""
    return ds.select([i for i, s in enumerate(ds[SKIP_COLUMN][:]) if s is None])


def _check_ids(ds: Dataset, where: str) -> None:
    ids = ds["id"][:]
    if any(i is None or not i.strip() for i in ids):
        raise SlickError(f"{where}: the id column is null or empty in some rows")
    if len(set(ids)) != len(ids):
        raise SlickError(f"{where}: column 'id' has duplicate values; ids must be unique")


def _only_relations(rows: dict[str, Dataset], relations, name: str) -> dict[str, Dataset]:
    wanted = set(relations.split(",") if isinstance(relations, str) else relations)
    present = {r for ds in rows.values() for r in ds["relation"][:]}
    unknown = sorted(wanted - present)
    if unknown:
        raise SlickError(f"unknown relation(s) {', '.join(unknown)}; {name} has {', '.join(sorted(present))}")
    return {s: ds.select([i for i, r in enumerate(ds["relation"][:]) if r in wanted]) for s, ds in rows.items()}


def _held_out(ds: Dataset, slick: SlickConfig) -> set[int]:
    """Indices of the rows held out as exemplars, per relation (see the module doc)."""
    by_relation: dict[str, list[int]] = {}
    for i, (rel, skip) in enumerate(zip(ds["relation"][:], ds[SKIP_COLUMN][:], strict=True)):
        if skip is None:
            by_relation.setdefault(rel, []).append(i)
    ids = ds["id"][:]
    held: set[int] = set()
    for rel, rows in sorted(by_relation.items()):
        k = min(slick.num_prompts * (slick.num_shots + 1), len(rows) // 2)
        if k < slick.num_shots + 1:
            raise SlickError(
                f"relation {rel} has {len(rows)} judgeable rows: too few to hold out {slick.num_shots + 1} "
                "exemplars and annotate the rest; pass --exemplar-split with a split to draw them from"
            )
        rows.sort(key=lambda i: hashlib.sha256(f"{slick.seed}:{ids[i]}".encode()).digest())
        held.update(rows[:k])
    return held


def _describe(ds: Dataset) -> str:
    skipped = Counter(ds[SKIP_COLUMN][:])
    judged = skipped.pop(None, 0)
    return f"{len(ds)} rows, {judged} judged" + "".join(f", {n} {why}" for why, n in sorted(skipped.items()))


def _limit(ds: Dataset, limit: int | None) -> Dataset:
    """The first `limit` rows of each relation, in dataset order; held-out exemplar rows are all kept."""
    if limit is None:
        return ds
    seen: Counter = Counter()
    keep = []
    for i, (rel, skip) in enumerate(zip(ds["relation"][:], ds[SKIP_COLUMN][:], strict=True)):
        seen[rel] += skip != EXEMPLAR
        if skip == EXEMPLAR or seen[rel] <= limit:
            keep.append(i)
    return ds.select(keep)
