"""Reading an annotated dataset: a local folder laid out as a Hub dataset repo, or a Hub dataset id."""

from pathlib import Path

from datasets import Dataset, DatasetDict

from slick_hf.core.schema import check_annotated_columns
from slick_hf.errors import SlickError, first_line


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
