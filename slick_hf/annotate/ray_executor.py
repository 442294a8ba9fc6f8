"""SliCK annotation on Ray: one actor per worker, each holding one engine; Ray schedules the chunks.

Each actor builds its engine once (the in-process engine on a CPU or GPU node, or a client of
inference servers) and annotates whole chunks. `ray.util.ActorPool` hands out the chunks and returns
results as they finish; the driver journals each one (`annotate_dataset`), so a rerun skips them. A
worker that dies is restarted by Ray and its chunk retried (`max_restarts`, `max_task_retries`).
Each worker gets `threads` torch threads and as many Ray CPUs, so N workers on one node do not
oversubscribe its cores (two torch processes fighting over the same cores each run ~8x slower).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping

from slick_hf.annotate.executors import Chunk, ChunkExecutor, worker_environment
from slick_hf.annotate.rows import annotate_rows
from slick_hf.core.slick import SlickConfig
from slick_hf.errors import SlickError

logger = logging.getLogger(__name__)
RETRIES = 3  # restarts of a dead worker, and retries of the chunk it held


class AnnotateWorker:
    """A Ray actor's state: one engine. Methods run in the worker process."""

    def __init__(self, model: str, engine_args, threads: int) -> None:
        import torch

        from slick_hf.engines.factory import make_engine

        torch.set_num_threads(threads)
        self.engine = make_engine(model, engine_args)

    def info(self) -> dict[str, str]:
        """The engine's info."""
        return self.engine.info()

    def pid(self) -> int:
        """The worker's process id."""
        return os.getpid()

    def annotate(self, index: int, rows: list[dict], pools: Mapping[str, list], config: SlickConfig) -> Chunk:
        """One chunk's SliCK results."""
        return index, annotate_rows(rows, pools, self.engine, config)


class RayExecutor(ChunkExecutor):
    """`num_workers` Ray actors with `threads` CPUs each, on the cluster at `address` or a local Ray."""

    name = "ray"

    def __init__(self, model: str, engine_args, num_workers: int, threads: int, address: str | None = None) -> None:
        import ray
        from ray.util import ActorPool

        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise SlickError(f"cannot start or reach Ray at {address or 'a new local cluster'}: {err}") from None
        cpus = ray.cluster_resources().get("CPU", 0)
        if num_workers * threads > cpus:
            logger.warning("%d workers x %d threads exceed the cluster's %g CPUs", num_workers, threads, cpus)
        # one GPU per worker where engines run on CUDA: Ray sets the actor's CUDA_VISIBLE_DEVICES, which the
        # in-process engines and the vLLM engine's worker process inherit
        gpus = 1 if str(getattr(engine_args, "device", "cpu")).startswith("cuda") else 0
        actor = ray.remote(AnnotateWorker).options(
            num_cpus=min(threads, cpus or threads),
            num_gpus=gpus,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
            runtime_env={"env_vars": worker_environment(threads)},
        )
        self.actors = [actor.remote(model, engine_args, threads) for _ in range(num_workers)]
        self.pool = ActorPool(self.actors)
        self._info = ray.get(self.actors[0].info.remote())

    def info(self) -> dict[str, str]:
        """The first worker's engine info (every worker runs the same engine)."""
        return self._info

    def worker_pids(self) -> list[int]:
        """The workers' process ids (for tests and monitoring)."""
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def annotate_chunks(
        self, chunks: Iterable[Chunk], pools: Mapping[str, list], config: SlickConfig
    ) -> Iterator[Chunk]:
        """Every chunk on the next free worker; results in the order they finish."""
        pools = dict(pools)
        yield from self.pool.map_unordered(
            lambda actor, chunk: actor.annotate.remote(chunk[0], chunk[1], pools, config), chunks
        )

    def close(self) -> None:
        """Stop the workers, and the local Ray if this executor started it."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        if self.started_ray:
            ray.shutdown()
