"""EntityQuestions (Sciavolino et al. 2021) as SliCK reads it: relations, templates, files, download.

The official layout is `DIR/dataset/{train,dev,test}/P<id>.<split>.json`, each file a JSON array
of `{"question": str, "answers": [str, ...]}`; `relation_query_templates.json` next to
`dataset/` gives each relation's question template with `[X]` for the subject.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from slick_hf.core.paths import cache_dir
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
LAYOUT = "DIR/dataset/{train,dev,test}/P<id>.<split>.json"
SPLITS: tuple[str, ...] = ("train", "dev", "test")


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


def _is_split_folder(path: Path) -> bool:
    return any((path / s).is_dir() for s in SPLITS)


def find_root(data_dir: Path) -> Path:
    """The `dataset` folder (the one holding train/, dev/, test/) under `data_dir`.

    Accepts the folder holding `dataset/`, the `dataset` folder itself, or a folder with exactly
    one subfolder that holds `dataset/` (an unzipped archive with a top-level folder).
    """
    data_dir = data_dir.expanduser()
    if not data_dir.is_dir():
        problem = "is a file, not a folder" if data_dir.exists() else "does not exist"
        raise SlickError(
            f"EntityQuestions folder {data_dir} {problem}: pass --data-dir pointing at an unzipped "
            f"copy of {EQ_URL} (layout {LAYOUT})."
        )
    if _is_split_folder(data_dir / "dataset"):
        return data_dir / "dataset"
    if _is_split_folder(data_dir):
        return data_dir
    nested = sorted(p / "dataset" for p in data_dir.iterdir() if _is_split_folder(p / "dataset"))
    if len(nested) == 1:
        return nested[0]
    raise SlickError(
        f"{data_dir} does not look like EntityQuestions: expected {LAYOUT} "
        f"(the unzipped {EQ_URL}); pass --data-dir pointing at that folder."
    )


def read_templates(dataset_dir: Path) -> dict[str, str]:
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


def read_file(path: Path, relation: str, template: str) -> list[tuple[int, str, str, tuple[str, ...]]]:
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
                f"yourself and pass --data-dir pointing at the unzipped copy (layout {LAYOUT})."
            ) from exc
        extracted = tmp / "extracted"
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(extracted)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SlickError(
                f"The file downloaded from {url} is not a readable zip archive ({exc}); "
                f"pass --data-dir pointing at an unzipped copy (layout {LAYOUT})."
            ) from exc
        try:
            find_root(extracted)
        except SlickError as exc:
            raise SlickError(f"The archive from {url} has no dataset/ folder ({LAYOUT}).") from exc
        try:
            os.replace(extracted, target)
        except OSError:
            if not target.is_dir():  # another process may have finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
