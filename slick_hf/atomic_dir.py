"""Replace a whole folder at once: readers see the complete old version or the complete new one.

`new_version(folder)` yields a staging folder beside it that starts as a hard-linked copy of the
folder (cheap; every slick-hf write replaces a file by rename, so the old version's files are never
changed through a link). On success the staging folder takes the folder's place in one atomic
exchange (Linux `renameat2(RENAME_EXCHANGE)`; elsewhere two renames with a short gap), and the old
version is removed. A kill at any moment leaves the folder as it was, or as it is now, plus at
most a stale `.NAME.slick-*` staging folder that the next write removes. One writer per folder.

`fault_point(step)` is the crash tests' hook: with `SLICK_HF_FAULT_AT=step` set, the process exits
at that step at once (`os._exit`, as a kill would).
"""

import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FAULT_ENV = "SLICK_HF_FAULT_AT"
FAULT_EXIT = 86
STAGE_MARK = ".slick-"


def fault_point(step: str) -> None:
    """Exit at once, as a kill would, when `SLICK_HF_FAULT_AT` names this write step (crash tests)."""
    if os.environ.get(FAULT_ENV) == step:
        os._exit(FAULT_EXIT)


def dir_mode() -> int:
    """The mode a plain `mkdir` gives under this process's umask (mkdtemp gives 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


@contextmanager
def new_version(folder: Path) -> Iterator[Path]:
    """Yield a staging copy of `folder`; when the block ends without error it replaces `folder` at once."""
    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f".{folder.name}{STAGE_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}{STAGE_MARK}", dir=folder.parent))
    try:
        if folder.is_dir():
            _link_tree(folder, stage)
            shutil.copymode(folder, stage)
        else:
            os.chmod(stage, dir_mode())
        fault_point("staged")
        yield stage
        fault_point("written")
        _swap(stage, folder)
        fault_point("swapped")
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # after the swap: the old version


def _link_tree(src: Path, dst: Path) -> None:
    """Recreate `src` under `dst`: folders made, files hard-linked (copied where links fail)."""
    for root, dirs, files in os.walk(src):
        target = dst / Path(root).relative_to(src)
        for name in dirs:
            (target / name).mkdir()
            shutil.copymode(Path(root) / name, target / name)
        for name in files:
            try:
                os.link(Path(root) / name, target / name, follow_symlinks=False)
            except OSError:
                shutil.copy2(Path(root) / name, target / name, follow_symlinks=False)


def _swap(stage: Path, folder: Path) -> None:
    """Put `stage` where `folder` is; afterwards `stage` holds the old version (if there was one)."""
    if not folder.exists():
        os.rename(stage, folder)
        return
    if _exchange(stage, folder):
        return
    old = stage.with_name(stage.name + ".old")
    os.rename(folder, old)
    fault_point("between-renames")
    os.rename(stage, folder)
    os.rename(old, stage)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))
