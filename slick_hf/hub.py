"""Folders laid out as Hub repositories: write them atomically, card them, push them."""

import hashlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from datasets import Dataset, DatasetDict, DatasetInfo, Features
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

from slick_hf.atomic_dir import fault_point, new_version
from slick_hf.errors import SlickError, first_line

BEGIN, END = "<!-- slick-hf:begin -->", "<!-- slick-hf:end -->"
META_FILE = "slick_annotation.json"
_CONFIG_RE = re.compile(r"[^A-Za-z0-9._-]+")


def check_config_name(name: str) -> str:
    """A config name is one folder of the dataset repo: letters, digits, `.`, `_`, `-`, not starting with `.`."""
    if not name or _CONFIG_RE.search(name) or name.startswith("."):
        raise SlickError(f"config name {name!r} must be letters, digits, '.', '_' or '-' and not start with '.'")
    return name


def config_name_for(model: str) -> str:
    """A dataset config name for an annotating model: `org/Model` -> `org--Model`."""
    name = _CONFIG_RE.sub("-", model.strip("/").replace("/", "--")).strip("-.")
    if not name:
        raise SlickError(f"cannot derive a config name from model {model!r}; pass --config-name")
    return name


def is_hub_id(name: str) -> bool:
    """Whether `name` reads as a Hub repo id (`org/name` or `name`) and is not a local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if Path(name).expanduser().exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def file_mode() -> int:
    """The mode a plain `open()` would give a new file under this process's umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a full disk must not leave a temp file behind
        raise


def check_writable_dir(path: Path) -> None:
    """Create `path` if needed and prove it writable now, before any work; SlickError if not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SlickError(f"output folder {path} is a file; pass a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".slick-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise SlickError(f"cannot write to output folder {path}: {err.strerror or first_line(err)}") from None


def write_parquet(ds: Dataset, path: Path) -> None:
    """Write one parquet file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        ds.to_parquet(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parquet_name(split: str) -> str:
    """The one parquet file of a split in a config folder."""
    return f"{split}-00000-of-00001.parquet"


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (recorded in `slick_annotation.json`, checked by `is_done`)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_dataset_repo(
    out_dir: Path, config_name: str, splits: DatasetDict, meta: Mapping, render_section: Callable[[list], str]
) -> Path:
    """Write `splits` as config `config_name` of a Hub-style dataset folder, with its metadata and card.

    The whole folder is replaced at once (`slick_hf.atomic_dir.new_version`): a kill at any write
    step leaves the complete old version. The metadata records each split's rows and sha256; an
    existing card keeps its own text and other configs (edited with `DatasetCard.load`).
    """
    out_dir = Path(out_dir)
    with new_version(out_dir) as stage:
        files = {}
        for split, ds in splits.items():
            path = stage / config_name / parquet_name(split)
            write_parquet(ds, path)
            files[split] = {"rows": len(ds), "sha256": file_sha256(path)}
            fault_point(f"parquet:{split}")
        meta_path = stage / config_name / META_FILE
        merged = dict(meta) | {"files": files}
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            merged["splits"] = {**old.get("splits", {}), **meta.get("splits", {})}
            merged["files"] = {**old.get("files", {}), **files}
            merged["exemplars"] = {**old.get("exemplars", {}), **meta.get("exemplars", {})}
            relations = set(old.get("dataset", {}).get("relations", [])) | set(meta["dataset"]["relations"])
            reports = {**old.get("dataset", {}).get("reports", {}), **meta["dataset"].get("reports", {})}
            merged["dataset"] = {**meta["dataset"], "relations": sorted(relations), "reports": reports}
        atomic_write_text(meta_path, json.dumps(merged, indent=2, sort_keys=True))
        fault_point("meta")
        write_card(stage, render_section)
        fault_point("card")
    return out_dir


def _config_entries(out_dir: Path) -> list[dict]:
    entries = []
    for meta_path in sorted(out_dir.glob(f"*/{META_FILE}")):
        name = meta_path.parent.name
        splits = sorted(p.name.split("-00000")[0] for p in meta_path.parent.glob(parquet_name("*")))
        entries.append(
            {
                "config_name": name,
                "data_files": [{"split": s, "path": f"{name}/{s}-*.parquet"} for s in splits],
            }
        )
    return entries


def write_card(out_dir: Path, render_section: Callable[[list], str]) -> None:
    """(Re)write README.md: our configs and their features (`dataset_info`) merged into its YAML, our
    section between markers."""
    readme = out_dir / "README.md"
    metas = [json.loads(p.read_text()) | {"config_name": p.parent.name} for p in sorted(out_dir.glob(f"*/{META_FILE}"))]
    section = f"{BEGIN}\n{render_section(metas)}\n{END}"
    if readme.exists():
        card = load_card(readme)
        text = card.text
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip() + "\n\n" + section + "\n"
        card.text = text
    else:
        data = DatasetCardData(
            tags=["slick", "hallucination", "knowledge-probing", "closed-book-qa"],
            task_categories=["question-answering"],
        )
        card = DatasetCard(f"---\n{data.to_yaml()}\n---\n{section}\n")
    ours = {e["config_name"]: e for e in _config_entries(out_dir)}
    existing = [c for c in (card.data.get("configs") or []) if c.get("config_name") not in ours]
    card.data.configs = existing + list(ours.values())
    _set_dataset_info(card.data, {name: _config_features(out_dir / name) for name in ours})
    atomic_write_text(readme, str(card))


def _config_features(config_dir: Path) -> Features | None:
    """The features every parquet split of a config shares (read from the files' schemas), else None."""
    import pyarrow.parquet as pq

    found = [Features.from_arrow_schema(pq.read_schema(p)) for p in sorted(config_dir.glob(parquet_name("*")))]
    return found[0] if found and all(f == found[0] for f in found) else None


def _set_dataset_info(data: DatasetCardData, features: Mapping[str, Features | None]) -> None:
    """The card's `dataset_info`: each of our configs' features, as `datasets` writes them (the Hub's
    viewer then shows `slick_category`'s names); other configs' entries are kept as they are."""
    old = data.get("dataset_info")
    old = [old] if isinstance(old, dict) else old if isinstance(old, list) else []
    kept = [{"config_name": "default"} | e for e in old if isinstance(e, dict)]
    data["dataset_info"] = [e for e in kept if e["config_name"] not in features] or None
    infos = {name: DatasetInfo(features=f) for name, f in features.items() if f is not None}
    DatasetInfosDict(infos).to_dataset_card_data(data)


def load_card(readme: Path) -> DatasetCard:
    """A dataset card; SlickError naming the file when its YAML header is broken."""
    try:
        return DatasetCard.load(readme)
    except Exception as err:  # the YAML parser raises its own types
        if not type(err).__module__.startswith(("yaml", "huggingface_hub")):
            raise
        raise SlickError(
            f"{readme} has a broken YAML header ({first_line(err)}); fix it, or delete it and slick-hf rewrites it"
        ) from None


def push_folder(
    folder: Path, repo_id: str, repo_type: str, private: bool = False, ignore: list[str] | None = None
) -> str:
    """Upload a Hub-style folder; on failure the folder stays and the error says how to retry."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        space = {"space_sdk": "gradio"} if repo_type == "space" else {}
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **space)
        info = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            ignore_patterns=[".*", ".*/**", *(ignore or [])],
            commit_message="Upload with slick-hf",
        )
    except Exception as err:  # network, auth and HTTP errors all end the same way for the user
        raise SlickError(
            f"could not push {folder} to the Hub ({repo_type} {repo_id}): {first_line(err).rstrip('.')}. "
            f"Nothing was lost: retry with `slick-hf push {folder} {repo_id} --repo-type {repo_type}`"
        ) from None
    return str(getattr(info, "commit_url", info))


@cache
def require_hub(what: str) -> None:
    """SlickError, in one line and within seconds, when the Hub cannot be reached to load `what`.

    Without it `huggingface_hub` and `datasets` retry for half a minute and print a line per try.
    Nothing is checked under `HF_HUB_OFFLINE=1` (the local cache only).
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=5).close()
    except OSError as err:
        raise SlickError(
            f"cannot reach {constants.ENDPOINT} to load {what} ({err.strerror or first_line(err)}): check the "
            "network and the name; to use only what is in the local cache, set HF_HUB_OFFLINE=1"
        ) from None
