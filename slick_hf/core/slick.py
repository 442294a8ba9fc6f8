"""SliCK: P_correct and the four knowledge categories (pure code, no I/O)."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from slick_hf.core.normalize import exact_match
from slick_hf.errors import SlickError

CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
KNOWN = CATEGORIES[:3]


@dataclass(frozen=True)
class SlickConfig:
    """Every SliCK parameter; the defaults are the paper's.

    Parameters:
        num_prompts (`int`, defaults to 10): few-shot prompts per example (exemplar sets per relation).
        num_shots (`int`, defaults to 4): exemplars per prompt.
        num_samples (`int`, defaults to 16): temperature samples per prompt.
        temperature (`float`, defaults to 0.5): sampling temperature of P(T>0).
        top_k (`int`, defaults to 40): top-k of the samples.
        max_new_tokens (`int`, defaults to 24): longest answer generated.
        seed (`int`, defaults to 0): seed of the exemplar draw and of every sample.
        full_sampling (`bool`, defaults to False): draw every sample (exact P(T>0)) instead of adaptively.
    """

    num_prompts: int = field(default=10, metadata={"help": "few-shot prompts per example"})
    num_shots: int = field(default=4, metadata={"help": "exemplars per prompt"})
    num_samples: int = field(default=16, metadata={"help": "temperature samples per prompt"})
    temperature: float = field(default=0.5, metadata={"help": "sampling temperature of P(T>0)"})
    top_k: int = field(default=40, metadata={"help": "top-k of the samples"})
    max_new_tokens: int = field(default=24, metadata={"help": "longest answer generated, in tokens"})
    seed: int = field(default=0, metadata={"help": "seed of the exemplar draw and of every sample"})
    full_sampling: bool = field(
        default=False, metadata={"help": "draw all samples (exact P(T>0)) instead of stopping at the first correct"}
    )

    def __post_init__(self) -> None:
        for name in ("num_prompts", "num_shots", "num_samples", "max_new_tokens", "top_k"):
            if getattr(self, name) < 1:
                raise SlickError(f"SliCK parameter {name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.temperature < float("inf"):  # also rejects nan
            raise SlickError(f"SliCK sampling temperature must be a finite number > 0, got {self.temperature}")

    @property
    def max_generations(self) -> int:
        """Generations per example with full sampling: 170 with the paper's defaults."""
        return self.num_prompts * (1 + self.num_samples)

    def to_dict(self) -> dict:
        """The parameters as a plain dict (recorded in cards and resume fingerprints)."""
        return asdict(self)


def categorize(p_greedy: float, p_sample: float) -> str:
    """The SliCK category from P(T=0) and P(T>0); greedy alone decides the first two."""
    if not (0.0 <= p_greedy <= 1.0 and 0.0 <= p_sample <= 1.0):
        raise ValueError(f"probabilities must lie in [0, 1], got {p_greedy}, {p_sample}")
    if p_greedy == 1.0:
        return "HighlyKnown"
    if p_greedy > 0.0:
        return "MaybeKnown"
    return "WeaklyKnown" if p_sample > 0.0 else "Unknown"


def count_correct(completions: Sequence[str], answers: Sequence[str]) -> int:
    """How many completions exactly match any gold alias."""
    return sum(exact_match(c, answers) for c in completions)


def clean_completion(text: str) -> str:
    """The answer a completion gives: text before the first newline, stripped."""
    return text.split("\n", 1)[0].strip()
