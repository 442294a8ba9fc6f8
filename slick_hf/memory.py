"""Peak resident memory per pipeline phase, and handing freed memory back to the system.

Linux keeps a process's peak resident set (`VmHWM` in /proc/self/status) and lets the process reset
it (writing 5 to /proc/self/clear_refs), so each phase of a job can report its own peak. Elsewhere,
or where the reset is not allowed, a phase reports the process's peak so far (`reset: false`).

glibc keeps freed heap memory mapped for reuse: after a model is dropped, `release_freed_memory`
returns it (malloc_trim), so the next phase does not start on top of the last one's peak.
"""

import ctypes
import ctypes.util
import gc
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GB = 1e9


def peak_rss_bytes() -> int:
    """The process's peak resident set since start (or since the last reset), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports kB


def reset_peak_rss() -> bool:
    """Start a new peak measurement from the current resident set; False where it is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def release_freed_memory() -> None:
    """Collect garbage and hand the freed heap back to the system (glibc; a no-op elsewhere)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@contextmanager
def phase_peak(name: str, record: dict) -> Iterator[None]:
    """Record the peak resident set of the enclosed phase in `record[name]` (GB, whether reset, wall seconds)."""
    reset = reset_peak_rss()
    started = time.perf_counter()
    try:
        yield
    finally:
        record[name] = {
            "peak_rss_gb": round(peak_rss_bytes() / GB, 2),
            "reset": reset,
            "seconds": round(time.perf_counter() - started, 1),
        }
