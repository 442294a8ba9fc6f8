"""Where SliCK chunks are annotated: in this process (`LocalExecutor`) or on a Ray cluster
(`RayExecutor` in `ray_executor.py`; `factory.py` builds the one a command asks for).

An executor turns pending chunks `(index, rows)` into `(index, results)`, in any order. `annotate_dataset`
journals each result once, as it arrives, so a rerun skips the finished chunks whichever executor made
them, and the assembled dataset is the same row for row as long as each engine computes alike (same
dtype; in bf16, same torch threads): chunks are fixed slices of the dataset and every sampling seed
comes from the example and the prompt (`request_seed`), never from the worker.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping

from slick_hf.annotate.rows import annotate_rows
from slick_hf.core.slick import SlickConfig
from slick_hf.engines.base import Engine

Chunk = tuple[int, list[dict]]


class ChunkExecutor(ABC):
    """Annotates chunks with one engine per worker; the base of every executor."""

    name: str = "executor"

    @abstractmethod
    def info(self) -> dict[str, str]:
        """The engine's info (engine, model id and revision, dtype): the same on every worker."""

    @abstractmethod
    def annotate_chunks(
        self, chunks: Iterable[Chunk], pools: Mapping[str, list], config: SlickConfig
    ) -> Iterator[Chunk]:
        """Yield `(index, results)` for every chunk, in the order they finish."""

    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> ChunkExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(ChunkExecutor):
    """The chunks one after the other, with an engine of this process."""

    name = "local"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def info(self) -> dict[str, str]:
        """The engine's info."""
        return self.engine.info()

    def close(self) -> None:
        """Close the engine."""
        self.engine.close()

    def annotate_chunks(
        self, chunks: Iterable[Chunk], pools: Mapping[str, list], config: SlickConfig
    ) -> Iterator[Chunk]:
        """Each chunk in turn."""
        for index, rows in chunks:
            yield index, annotate_rows(rows, pools, self.engine, config)


def as_executor(engine: Engine | ChunkExecutor) -> ChunkExecutor:
    """An executor as given, or an engine wrapped in a `LocalExecutor`."""
    return engine if isinstance(engine, ChunkExecutor) else LocalExecutor(engine)


def worker_environment(threads: int) -> dict[str, str]:
    """Environment of a worker process with `threads` torch threads (OpenMP and MKL read it at start)."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"} | (
        {"HF_HUB_OFFLINE": os.environ["HF_HUB_OFFLINE"]} if "HF_HUB_OFFLINE" in os.environ else {}
    )
