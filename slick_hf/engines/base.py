"""The engine interface: prompts in, N completions each out, stopped at a stop string."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

# prompts the fast in-process engine decodes together, per dtype. bf16: the 10 greedy prompts of a whole default
# chunk (64 examples) in one wave, prefilled and decoded once (48 geo examples, AMX: 7.3 s against 7.5 s in waves of
# 256). fp32: waves of 256 are faster and smaller (120 geo train examples, 2-core Xeon without AMX: 95 s and 2.9 GB
# peak RSS against 104 s and 3.9 GB in waves of 640)
BATCH_PROMPTS = {"bfloat16": 640, "float32": 256}
# greedy prompts the plain reference engine left-pads into one `generate` call (padding grows with the batch)
PLAIN_BATCH_PROMPTS = 16


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt and how to complete it; `temperature == 0` means greedy decoding.

    `seed` makes sampled completions reproducible: an engine must give the same completions for
    the same request whatever else it batches it with.
    """

    prompt: str
    n: int = 1
    temperature: float = 0.0
    top_k: int | None = None
    max_new_tokens: int = 24
    seed: int = 0
    stop: tuple[str, ...] = ("\n",)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut a completion at the first occurrence of any stop string (exclusive)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


class Engine(ABC):
    """Completes prompts. SliCK annotation and evaluation only ever talk to this interface."""

    name: str = "engine"

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        """Return, for each request, its `n` completions cut at the first stop string."""

    @abstractmethod
    def info(self) -> dict[str, str]:
        """Provenance for dataset and model cards: engine, model_id, model_revision."""

    def close(self) -> None:
        """Release resources (connections, memory)."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
