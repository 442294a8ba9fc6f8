"""The model files of a stopping point's folder (the run folder for EARLY_STOP, `convergence/`).

Weights are written once: where EARLY_STOP is the last epoch, the run folder's weights files are
hard links to `convergence/`'s, and `convergence/` links a finished checkpoint's weights rather than
copying them (a copy only where the file system has no hard links). Only weights are linked (config
and tokenizer files are copied), and `clear_weights` runs before a model is saved into a folder, so
a save into one folder never writes through a link into the other. Weights files follow the umask,
as every other file does (safetensors writes them 0600).
"""

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from slick_hf.hub import file_mode

WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")
MODEL_FILES = ("*.safetensors", "*.json", "*.jinja", "*.txt", "*.model")
TRAINING_STATE = ("trainer_state", "training_args", "scheduler", "rng_state")


def weight_files(folder: Path) -> list[Path]:
    """The weights files (and their shard indexes) directly in `folder`."""
    return sorted({p for pattern in WEIGHT_PATTERNS for p in Path(folder).glob(pattern) if p.is_file()})


def checkpoint_model_files(checkpoint: Path) -> list[Path]:
    """The model's files in a Trainer checkpoint (weights, config, tokenizer), not its training state."""
    found = {f for pattern in MODEL_FILES for f in Path(checkpoint).glob(pattern) if f.is_file()}
    return sorted(f for f in found if not f.name.startswith(TRAINING_STATE))


def clear_weights(folder: Path) -> None:
    """Remove the weights files of `folder` (a link's other name keeps its data)."""
    for path in weight_files(folder):
        path.unlink(missing_ok=True)  # every rank of a distributed run saves: another may be first


def follow_umask(folder: Path) -> None:
    """Give the weights files of `folder` the mode a plain `open()` would (0644 under umask 022)."""
    for path in weight_files(folder):
        os.chmod(path, file_mode())


def place_file(src: Path, dst: Path, link: bool) -> None:
    """Put `src` at `dst`, replacing it at once (never writing through it): a hard link when `link`
    (a copy where the file system has none), else a copy."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.slick-tmp")
    tmp.unlink(missing_ok=True)
    try:
        if link:
            try:
                os.link(src, tmp)
            except OSError:  # another file system, or one without hard links
                link = False
        if not link:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def install_model_files(files: Iterable[Path], target: Path) -> None:
    """Put a saved model's files into `target`: weights hard-linked, the small files (config,
    tokenizer) copied, so that a later save into either folder cannot change the other."""
    target.mkdir(parents=True, exist_ok=True)
    clear_weights(target)
    for src in files:
        place_file(src, target / src.name, link=any(src.match(pattern) for pattern in WEIGHT_PATTERNS))
    follow_umask(target)


def share_model(source: Path, target: Path) -> None:
    """Make `target` hold the same model as `source`, a folder that holds only a saved model
    (`convergence/`): its weights once on disk, the rest copied."""
    install_model_files((p for p in sorted(Path(source).iterdir()) if p.is_file()), Path(target))
