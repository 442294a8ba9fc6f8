"""Annotation on a local Ray with 2 workers: the same rows as one process, a killed worker's chunk
retried by Ray, and a rerun after an interrupted job that recomputes no finished chunk."""

import json
import os
import signal
from collections.abc import Iterable, Iterator

import pytest
from datasets import Dataset

from slick_hf.annotate.executors import ChunkExecutor
from slick_hf.annotate.factory import ExecutorArguments
from slick_hf.annotate.journal import annotate_dataset
from slick_hf.annotate.rows import exemplar_pools_by_relation
from slick_hf.core.slick import SlickConfig
from slick_hf.engines.factory import EngineArguments, make_engine
from slick_hf.errors import SlickError

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'slick-hf[ray]'")

CONFIG = SlickConfig(num_prompts=2, num_samples=2, max_new_tokens=8)
ENGINE = EngineArguments(engine="transformers", dtype="float32", batch_size=16)
CHUNK = 2


@pytest.fixture(scope="module")
def questions(geo_small) -> Dataset:
    return geo_small["test"].select(range(8))


@pytest.fixture(scope="module")
def pools(geo_dev, questions) -> dict:
    return exemplar_pools_by_relation(geo_dev, sorted(set(questions["relation"])), CONFIG)


@pytest.fixture(scope="module")
def one_process(questions, pools, tmp_path_factory) -> list[dict]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray worker runs
    try:
        with make_engine("smollm2-135m", ENGINE) as engine:
            return annotate_dataset(questions, pools, engine, CONFIG, tmp_path_factory.mktemp("local"), CHUNK).to_list()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def executor():
    from slick_hf.annotate.ray_executor import RayExecutor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ex = RayExecutor("smollm2-135m", ENGINE, num_workers=2, threads=1)
    try:
        yield ex
    finally:
        ex.close()
        ray.shutdown()


class Watched(ChunkExecutor):
    """Another executor, with the chunks it was given recorded and a hook after each result."""

    def __init__(self, inner: ChunkExecutor, after_result=None) -> None:
        self.inner, self.after_result, self.given = inner, after_result, []

    def info(self) -> dict[str, str]:
        return self.inner.info()

    def annotate_chunks(self, chunks: Iterable, pools, config) -> Iterator:
        def recorded():
            for chunk in chunks:
                self.given.append(chunk[0])
                yield chunk

        for n, result in enumerate(self.inner.annotate_chunks(recorded(), pools, config), 1):
            yield result
            if self.after_result:
                self.after_result(n)


def journal_chunks(folder) -> list[int]:
    (journal,) = folder.glob("*.jsonl")
    return [json.loads(line)["chunk"] for line in journal.read_text().splitlines()]


def test_two_workers_give_the_rows_of_one_process(executor, questions, pools, one_process, tmp_path):
    assert len(set(executor.worker_pids())) == 2
    assert executor.info()["model_id"] and executor.info()["dtype"] == "float32"
    rows = annotate_dataset(questions, pools, executor, CONFIG, tmp_path, CHUNK).to_list()
    assert rows == one_process
    assert sorted(journal_chunks(tmp_path)) == [0, 1, 2, 3]


def test_a_killed_worker_is_restarted_and_its_chunk_retried(executor, questions, pools, one_process, tmp_path):
    victim = executor.worker_pids()[0]

    def kill_once(n: int) -> None:
        if n == 1:
            os.kill(victim, signal.SIGKILL)

    rows = annotate_dataset(questions, pools, Watched(executor, kill_once), CONFIG, tmp_path, CHUNK).to_list()
    assert rows == one_process
    assert victim not in executor.worker_pids()  # Ray started a new worker in its place
    assert sorted(journal_chunks(tmp_path)) == [0, 1, 2, 3]  # each chunk journaled once


def test_a_rerun_recomputes_no_finished_chunk(executor, questions, pools, one_process, tmp_path):
    def interrupt(n: int) -> None:
        if n == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        annotate_dataset(questions, pools, Watched(executor, interrupt), CONFIG, tmp_path, CHUNK)
    finished = journal_chunks(tmp_path)
    assert len(finished) == 2
    rerun = Watched(executor)
    rows = annotate_dataset(questions, pools, rerun, CONFIG, tmp_path, CHUNK).to_list()
    assert sorted(rerun.given) == sorted(set(range(4)) - set(finished))
    assert rows == one_process


def test_executor_arguments_are_checked():
    with pytest.raises(SlickError, match="--num-workers must be at least 1"):
        ExecutorArguments(executor="ray", num_workers=0)
    with pytest.raises(SlickError, match="--ray-address is for --executor ray"):
        ExecutorArguments(ray_address="auto")
    assert ExecutorArguments(executor="ray", num_workers=2, worker_threads=3).threads() == 3
