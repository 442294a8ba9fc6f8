"""Shared fixtures: one real SmolLM2 engine per session, tiny SliCK configs, small geo data."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from slick_hf.core.slick import SlickConfig  # noqa: E402
from slick_hf.engines.base import Engine, GenerationRequest  # noqa: E402


class CountingEngine(Engine):
    """Delegates to a real engine, counts `generate` calls and requests, and can fail on demand.

    `fail_when(requests)` returning True makes that call raise `fail_with` before delegating.
    """

    def __init__(
        self,
        inner: Engine,
        fail_when: Callable[[Sequence[GenerationRequest]], bool] | None = None,
        fail_with: type[BaseException] = KeyboardInterrupt,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.fail_when = fail_when
        self.fail_with = fail_with
        self.calls = 0
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        if self.fail_when is not None and self.fail_when(requests):
            raise self.fail_with()
        self.calls += 1
        self.requests.extend(requests)
        return self.inner.generate(requests)

    def info(self) -> dict[str, str]:
        return self.inner.info()


class ScriptedEngine(Engine):
    """No model: answers every request with `answer` (n times); records what it was asked."""

    name = "scripted"

    def __init__(self, answer: str = " Paris", model_id: str = "test/scripted") -> None:
        self.answer = answer
        self.model_id = model_id
        self.calls = 0
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        self.calls += 1
        self.requests.extend(requests)
        return [[self.answer] * r.n for r in requests]

    def info(self) -> dict[str, str]:
        return {"engine": self.name, "model_id": self.model_id, "model_revision": "test"}


@pytest.fixture(scope="session")
def engine():
    """The real SmolLM2-135M (GGUF converted once into the default slick-hf cache)."""
    import torch

    # On a shared, oversubscribed machine SLICK_HF_TEST_THREADS=1 is much faster.
    if "SLICK_HF_TEST_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["SLICK_HF_TEST_THREADS"]))
    from slick_hf.engines.plain import PlainTransformersEngine

    return PlainTransformersEngine("smollm2-135m", batch_size=16, dtype="float32")


@pytest.fixture(scope="session")
def small_slick() -> SlickConfig:
    return SlickConfig(num_prompts=3, num_samples=4, max_new_tokens=12)


@pytest.fixture(scope="session")
def geo_dev():
    """The full geo dev split (exemplar pools are drawn from it)."""
    from slick_hf.data import load_questions

    return load_questions("geo", splits=("dev",))[0]["dev"]


@pytest.fixture(scope="session")
def geo_small():
    """A few geo questions per relation, dev and test."""
    from slick_hf.data import load_questions

    return load_questions("geo", splits=("dev", "test"), limit_per_relation=2)[0]


@pytest.fixture(scope="session")
def counting_engine() -> type[CountingEngine]:
    return CountingEngine


@pytest.fixture(scope="session")
def scripted_engine() -> type[ScriptedEngine]:
    return ScriptedEngine


def write_annotated_folder(out: Path, splits: dict) -> Path:
    """Write already-labelled splits as config `fixture` of a Hub-style folder, as `slick-hf annotate` does."""
    from datasets import DatasetDict

    from slick_hf.annotate.card import category_stats, render_annotation_section
    from slick_hf.hub import write_dataset_repo

    meta = {
        "model": {"model_id": "fixture"},
        "slick": {"full_sampling": True},
        "dataset": {"source": "geo", "relations": sorted(set(splits["train"]["relation"]))},
        "exemplars": {},
        "splits": {s: category_stats(d) for s, d in splits.items()},
    }
    write_dataset_repo(out, "fixture", DatasetDict(splits), meta, render_annotation_section)
    return out
