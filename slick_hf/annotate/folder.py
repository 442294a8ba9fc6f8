"""Reading an annotated dataset: a local folder laid out as a Hub dataset repo, or a Hub dataset id.

A local folder is checked before `datasets` reads it (`config_problems`): the card's YAML, every
parquet file's footer, and each split's rows and sha256 against `slick_annotation.json`.
"""

import json
from pathlib import Path

from datasets import Dataset, DatasetDict

from slick_hf.core.schema import check_annotated_columns
from slick_hf.errors import SlickError, first_line
from slick_hf.hub import META_FILE, file_sha256, load_card, parquet_name, require_hub


def config_problems(folder: Path, config: str) -> list[str]:
    """What is wrong with one config of a local annotated folder (empty when it is complete and intact)."""
    import pyarrow.parquet as pq

    config_dir = Path(folder) / config
    if (Path(folder) / "README.md").exists():
        try:
            load_card(Path(folder) / "README.md")
        except SlickError as err:
            return [str(err)]
    problems = []
    for path in sorted(config_dir.glob("*.parquet")):
        try:
            pq.read_metadata(path)
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError and more for a damaged file
            problems.append(f"{path} is not a readable parquet file ({first_line(err)})")
    try:
        meta = json.loads((config_dir / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [*problems, f"{config_dir} has no {META_FILE}"]
    except ValueError as err:
        return [*problems, f"{config_dir / META_FILE} is unreadable ({first_line(err)})"]
    splits, files = meta.get("splits"), meta.get("files")
    if not isinstance(splits, dict):  # written by hand or another tool: nothing recorded to check against
        return problems
    files = files if isinstance(files, dict) else {}  # folders written before sha256s were recorded
    for split, stats in splits.items():
        path = config_dir / parquet_name(split)
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        if problems:
            continue
        rows, want = pq.read_metadata(path).num_rows, (stats or {}).get("num_examples")
        if want is not None and rows != want:
            problems.append(f"{path} has {rows} rows but {META_FILE} says {want}")
        elif (files.get(split) or {}).get("sha256") not in (None, file_sha256(path)):
            problems.append(f"{path} is not the file {META_FILE} recorded (sha256 differs)")
    return problems


def load_annotated(source: str, config: str | None = None, split: str | None = "train") -> Dataset | DatasetDict:
    """Load one split (or, with `split=None`, all) of an annotated dataset, checking its columns.

    A local folder is always read afresh and unchecked against `datasets`' cache, which is keyed
    by the folder's path: it would otherwise miss splits annotated since, or reject a folder
    rewritten with other split sizes.
    """
    import datasets

    where = f"{source}" + (f" (config {config})" if config else "")
    folder = Path(str(source))
    local = folder.is_dir()
    if local:
        configs = [config] if config else [p.parent.name for p in folder.glob(f"*/{META_FILE}")]
        checked = [name for name in configs if (folder / name / META_FILE).exists()]
        for name in checked:  # each check reads the card too
            if problems := config_problems(folder, name):
                raise SlickError(f"{where}: {problems[0]}; annotate into it again to rewrite it (or restore it)")
        if not checked and (folder / "README.md").exists():
            load_card(folder / "README.md")
    else:
        require_hub(f"dataset {source!r}")
    fresh = {"download_mode": "force_redownload", "verification_mode": "no_checks"} if local else {}
    try:
        loaded = datasets.load_dataset(str(source), config, split=split, **fresh)
    except ValueError as err:
        raise _load_error(source, config, split, err) from None
    except datasets.exceptions.DatasetGenerationError as err:
        raise SlickError(f"could not read {where}: {first_line(err.__cause__ or err)}") from None
    except (FileNotFoundError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as err:
        raise SlickError(
            f"annotated dataset not found: {source} is neither a dataset folder nor a reachable Hub dataset "
            f"({first_line(err)})"
        ) from None
    for name, ds in loaded.items() if isinstance(loaded, DatasetDict) else [(split, loaded)]:
        check_annotated_columns(ds, f"{where} split {name}")
    return loaded


def _load_error(source: str, config: str | None, split: str, err: Exception) -> SlickError:
    import datasets

    first = first_line(err)
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
