"""What this machine computes well, and using the cores we are given.

- `resolve_dtype`: `auto` becomes bfloat16 where the hardware computes it fast (CPU AMX, a CUDA GPU
  with bf16) and float32 elsewhere (AVX512-BF16 without AMX included: fp32 is faster there); the
  resolved name is what cards, metadata and resume fingerprints record.
- `configure_threads`: torch uses the CPUs this process may run on (`OMP_NUM_THREADS` when set,
  else the affinity mask), and warns when another busy torch process shares them (two torch
  processes on the same cores each run several times slower: OpenMP threads spin on each other).
"""

import logging
import os
import time
from functools import lru_cache
from pathlib import Path

from slick_hf.errors import SlickError

logger = logging.getLogger(__name__)
DTYPES = ("auto", "bfloat16", "float32")
# CPUs where `auto` picks bfloat16: AMX tiles compute bf16 products natively (annotation 2.45x fp32). With
# AVX512-BF16 alone (no AMX) fp32 is the faster choice on a 2-core Intel Xeon: annotation 1.51 against 1.29
# examples/s (48 geo examples), fine-tuning 5.34 against 6.31 s per epoch (32 examples, fused AdamW).
BF16_CPU_FLAGS = ("amx_bf16",)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def bf16_native(device: str = "cpu") -> bool:
    """Whether `device` computes bfloat16 matrix products faster than float32 (CPU: AMX)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def resolve_dtype(dtype: str | None, device: str = "cpu") -> str:
    """`bfloat16` or `float32` for a `--dtype` value (`auto`, None and the model's own default: auto)."""
    if dtype in (None, "auto"):
        return "bfloat16" if bf16_native(device) else "float32"
    if dtype not in DTYPES:
        raise SlickError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def usable_cpus() -> int:
    """CPUs this process may use: `OMP_NUM_THREADS` when set, else its affinity mask."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_seconds(pid: str) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _uses_torch(pid: str) -> bool:
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def busy_torch_processes(window: float = 0.3, threshold: float = 0.5) -> list[int]:
    """Other processes that have torch loaded and used more than `threshold` of a core over `window` s."""
    if not Path("/proc/self/stat").exists():
        return []
    me = str(os.getpid())
    pids = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and p.name != me]
    before = {pid: t for pid in pids if (t := _cpu_seconds(pid)) is not None}
    time.sleep(window)
    busy = []
    for pid, t0 in before.items():
        t1 = _cpu_seconds(pid)
        if t1 is not None and (t1 - t0) / window > threshold and _uses_torch(pid):
            busy.append(int(pid))
    return busy


def configure_threads() -> int:
    """Cap torch's threads at the CPUs we may use and warn (once per process) about busy torch neighbours."""
    import torch

    threads = usable_cpus()
    if torch.get_num_threads() > threads:  # never more threads than CPUs; a smaller choice (a caller's) stays
        torch.set_num_threads(threads)
    _warn_once_about_neighbours()
    return torch.get_num_threads()


@lru_cache(maxsize=1)
def _warn_once_about_neighbours() -> None:
    busy = busy_torch_processes()
    if busy:
        logger.warning(
            "another busy torch process shares these CPUs (pid %s); both will run several times slower "
            "(set OMP_NUM_THREADS and taskset to give each its own cores, or run one at a time)",
            ", ".join(map(str, busy)),
        )
