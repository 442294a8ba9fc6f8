"""Questions for annotation from a built-in source (geo, entityquestions) or a user's dataset."""

from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, DatasetDict

from slick_hf.core.schema import validate_questions
from slick_hf.data.load import DATASETS, load_questions
from slick_hf.errors import SlickError, first_line


def load_question_splits(
    dataset: str,
    data_dir: Path | None,
    splits: Sequence[str],
    relations: str | Sequence[str] | None,
    limit_per_relation: int | None,
) -> tuple[DatasetDict, Dataset, str]:
    """The splits to annotate (limited), the full dev split (exemplars) and a preparation report."""
    if limit_per_relation is not None and limit_per_relation < 1:
        raise SlickError(f"--limit-per-relation must be >= 1, got {limit_per_relation}")
    if dataset in DATASETS:
        wanted, report = load_questions(dataset, data_dir, splits, relations, limit_per_relation)
        dev = wanted["dev"] if "dev" in wanted and limit_per_relation is None else None
        if dev is None:
            dev = load_questions(dataset, data_dir, ("dev",), relations)[0]["dev"]
        return wanted, dev, report.summary()
    return _load_user_dataset(dataset, splits, relations, limit_per_relation)


def _load_user_dataset(name: str, splits, relations, limit) -> tuple[DatasetDict, Dataset, str]:
    """A local folder or Hub dataset with id/relation/question/answers columns and a dev split."""
    from datasets import load_dataset

    try:
        dd = load_dataset(name)
    except Exception as err:  # datasets raises many types for "not found / unreadable"
        raise SlickError(
            f"cannot load dataset {name!r}: {first_line(err)} (built-in datasets: {', '.join(DATASETS)})"
        ) from None
    if "dev" not in dd and "validation" in dd:  # datasets names dev.* files "validation"
        dd["dev"] = dd.pop("validation")
    for split in [*splits, "dev"]:
        if split not in dd:
            raise SlickError(f"dataset {name!r} has no split {split!r}; it has {', '.join(dd)}")
        validate_questions(dd[split], f"{name} [{split}]")
    if relations is not None:
        wanted = set(relations.split(",") if isinstance(relations, str) else relations)
        present = set(dd["dev"]["relation"])
        unknown = sorted(wanted - present)
        if unknown:
            raise SlickError(f"unknown relation(s) {', '.join(unknown)}; {name} has {', '.join(sorted(present))}")
        dd = dd.filter(lambda r: r["relation"] in wanted)
    out = DatasetDict({s: _limit(dd[s], limit) for s in splits})
    report = ", ".join(f"{s}: {len(d)}" for s, d in out.items())
    return out, dd["dev"], f"{name}: {report}"


def _limit(ds: Dataset, limit: int | None) -> Dataset:
    """The first `limit` rows of each relation, in dataset order."""
    if limit is None:
        return ds
    seen: dict[str, int] = {}
    keep = []
    for i, rel in enumerate(ds["relation"]):
        seen[rel] = seen.get(rel, 0) + 1
        if seen[rel] <= limit:
            keep.append(i)
    return ds.select(keep)
