"""`--executor local|ray`: the arguments, and the executor they name (see `executors.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from slick_hf.annotate.executors import ChunkExecutor, LocalExecutor
from slick_hf.errors import SlickError
from slick_hf.hardware import usable_cpus


@dataclass
class ExecutorArguments:
    """Where `slick-hf annotate` runs: this process, or Ray workers (`pip install 'slick-hf[ray]'`)."""

    executor: str = field(
        default="local",
        metadata={"help": "local (this process) or ray (one engine per Ray worker)", "choices": ["local", "ray"]},
    )
    ray_address: str | None = field(
        default=None, metadata={"help": "a running Ray cluster (ray://HOST:10001 or auto); default: start Ray here"}
    )
    num_workers: int = field(default=2, metadata={"help": "Ray workers, each holding one engine"})
    worker_threads: int | None = field(
        default=None, metadata={"help": "torch threads per Ray worker (default: this machine's CPUs / num_workers)"}
    )

    def __post_init__(self) -> None:
        for name in ("num_workers", "worker_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SlickError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.executor != "ray" and self.ray_address:
            raise SlickError("--ray-address is for --executor ray")
        if self.executor == "ray":
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                raise SlickError("--executor ray needs Ray: pip install 'slick-hf[ray]'")

    def threads(self) -> int:
        """Torch threads per worker: as given, else this machine's usable CPUs shared out."""
        return self.worker_threads or max(1, usable_cpus() // self.num_workers)


def make_executor(model: str, engine_args, args: ExecutorArguments) -> ChunkExecutor:
    """The executor `args.executor`, its workers' engines built from `model` and `engine_args`."""
    if args.executor == "ray":
        from slick_hf.annotate.ray_executor import RayExecutor

        return RayExecutor(model, engine_args, args.num_workers, args.threads(), args.ray_address)
    from slick_hf.engines.factory import make_engine

    return LocalExecutor(make_engine(model, engine_args))
