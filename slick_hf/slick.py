"""SliCK: P_correct and the four knowledge categories (pure code, no I/O)."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .errors import SlickError
from .normalize import exact_match

CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
KNOWN = CATEGORIES[:3]


@dataclass(frozen=True)
class SlickConfig:
    """Every SliCK parameter; the defaults are the paper's (SPEC.md)."""

    num_prompts: int = 10
    num_shots: int = 4
    num_samples: int = 16
    temperature: float = 0.5
    top_k: int = 40
    max_new_tokens: int = 24
    seed: int = 0
    full_sampling: bool = False

    def __post_init__(self) -> None:
        for name in ("num_prompts", "num_shots", "num_samples", "max_new_tokens", "top_k"):
            if getattr(self, name) < 1:
                raise SlickError(f"SliCK parameter {name} must be >= 1, got {getattr(self, name)}")
        if self.temperature <= 0:
            raise SlickError(f"SliCK sampling temperature must be > 0, got {self.temperature}")

    @property
    def max_generations(self) -> int:
        """Generations per example with full sampling: 170 with the paper's defaults."""
        return self.num_prompts * (1 + self.num_samples)

    def to_dict(self) -> dict:
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
