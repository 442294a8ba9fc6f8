"""Token choice for the fast engine: greedy with a tie margin, seeded top-k sampling by inverse CDF.

The sampling distribution is the one `transformers` uses for `do_sample=True, temperature=T,
top_k=k`: logits / T, keep every token scoring at least the k-th best (ties included), softmax.
Each sampled row draws with one uniform number per step from its request's own generator, so a
row's tokens depend only on its request (prompt, seed, parameters) and on the logits, never on
the rows it is batched with.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Distribution:
    """A categorical distribution over `tokens` (most likely first) as a cumulative sum."""

    tokens: torch.Tensor  # int64 [k]
    cdf: torch.Tensor  # float64 [k], increasing, cdf[-1] ~ 1

    def draw(self, u: float) -> int:
        """The token whose CDF interval holds `u` in [0, 1)."""
        j = int(torch.searchsorted(self.cdf, torch.tensor([u * float(self.cdf[-1])], dtype=torch.float64), right=True))
        return int(self.tokens[min(j, len(self.tokens) - 1)])


def sampling_distribution(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Distribution:
    """HF's sampling distribution for one row of logits: scores / T, top-k filter, softmax.

    `top` = (values, tokens) of `torch.topk(logits, m)` with m > top_k saves a pass over the
    vocabulary; the full row is used when the k-th score ties with the m-th one.
    """
    if top is not None and top_k is not None and 0 < top_k < top[0].numel():
        scores = top[0].float() / temperature
        kth = scores[top_k - 1]
        if scores[-1] < kth:
            keep = scores >= kth
            return _distribution(top[1][keep], scores[keep])
    scores = logits.float() / temperature
    if top_k is not None and 0 < top_k < scores.numel():
        kth = torch.topk(scores, top_k).values[-1]
        tokens = torch.nonzero(scores >= kth).flatten()
    else:
        tokens = torch.arange(scores.numel())
    return _distribution(tokens, scores[tokens])


def _distribution(tokens: torch.Tensor, scores: torch.Tensor) -> Distribution:
    """Softmax over `scores`, tokens ordered by score (descending) then token id."""
    order = torch.argsort(tokens, stable=True)
    tokens, scores = tokens[order], scores[order]
    order = torch.sort(scores, descending=True, stable=True).indices
    tokens, scores = tokens[order], scores[order]
    probs = torch.softmax(scores.double(), dim=0)
    return Distribution(tokens, torch.cumsum(probs, dim=0))


def greedy_choice(logits: torch.Tensor, top: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[int, float]:
    """The argmax token (as `torch.argmax` in HF greedy search) and its margin over the runner-up.

    When the margin is tiny, float rounding differences between computation orders could flip
    the choice; a margin of 0 (a tie) makes the token ambiguous.
    """
    values, tokens = top if top is not None else torch.topk(logits.float(), 2)
    margin = float(values[0]) - float(values[1])
    if margin == 0.0:  # a tie: argmax takes the lowest token id, topk's order is unspecified
        return int(torch.argmax(logits)), margin
    return int(tokens[0]), margin


def request_uniforms(generator: torch.Generator, n: int) -> list[float]:
    """One uniform draw per row of a request for one decoding step, in row order."""
    return torch.rand(n, generator=generator, dtype=torch.float64).tolist()
