"""What one SliCK label rests on, and what that evidence says about the label (pure code, no I/O).

An example's evidence is, per few-shot prompt, whether its greedy answer was correct and how many
temperature samples were drawn and correct. From it:

- `bootstrap_stability`: the share of bootstrap resamples of the example's prompts (each resampled
  prompt with a resample of its own samples) that give the example's category, in closed form. It is
  certain at the edges (10 of 10 resamples to 10 of 10), so the annotation's `slick_label_stability`
  is the posterior predictive of `slick_hf.core.predictive` instead; reports show both.
- `budget_distribution`: the category the example would get from its first `k` prompts and `m` of
  each prompt's samples (a random `m`, so a distribution), as `--num-prompts k --num-samples m` would
  give it: exemplar sets and sampling seeds are per (example, prompt), so a smaller budget is a prefix.
- `adaptive_cost`: the generations that budget costs with adaptive sampling (the default).

Adaptive sampling draws samples only for examples whose greedy answers are all wrong, and stops at the
round of the first correct sample: prompts after it were never sampled. Where a computation needs
samples of such a prompt, it counts them as all wrong, and says so (`needs_unsampled`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import comb

from slick_hf.core.normalize import exact_match

FIRM = 0.9  # a label at least this stable is "firm" in cards and reports


@dataclass(frozen=True)
class Evidence:
    """Per-prompt evidence of one SliCK label; `drawn`/`correct` are None for annotations without them."""

    greedy: tuple[bool, ...]
    drawn: tuple[int, ...] | None = None
    correct: tuple[int, ...] | None = None

    @property
    def num_prompts(self) -> int:
        """How many few-shot prompts the example was annotated with."""
        return len(self.greedy)

    @classmethod
    def from_row(cls, row: Mapping) -> "Evidence | None":
        """The evidence of an annotated row (None for a row SliCK did not judge).

        Per-prompt greedy correctness is read from `slick_prompt_greedy_correct`, or recomputed from the
        greedy answers in annotations made before it was stored; sample counts need
        `slick_prompt_samples_drawn` / `slick_prompt_samples_correct`.
        """
        greedy = row.get("slick_prompt_greedy_correct")
        if greedy is None:
            answers = row.get("slick_greedy_answers")
            if answers is None:
                return None
            greedy = [exact_match(a, row["answers"]) for a in answers]
        drawn, correct = row.get("slick_prompt_samples_drawn"), row.get("slick_prompt_samples_correct")
        if drawn is None or correct is None:
            return cls(tuple(map(bool, greedy)))
        return cls(tuple(map(bool, greedy)), tuple(drawn), tuple(correct))

    def category(self) -> str | None:
        """The category this evidence gives (None when it needs sample counts that were not stored)."""
        dist = budget_distribution(self, self.num_prompts, None)
        return None if dist is None else max(dist, key=dist.get)


def _no_correct(drawn: int, correct: int, m: int) -> float:
    """P(a random `m` of a prompt's `drawn` samples, `correct` of them correct, hold no correct one)."""
    if drawn <= m:
        return 1.0 if correct == 0 else 0.0
    return comb(drawn - correct, m) / comb(drawn, m)


def bootstrap_stability(evidence: Evidence, num_samples: int) -> float | None:
    """Share of prompt-bootstrap resamples that give the example's own category, in closed form.

    A resample draws `K` prompts with replacement from the example's `K`; each drawn prompt brings
    its greedy answer and `num_samples` samples drawn with replacement from its own. So with `k`
    correct greedy answers, HighlyKnown holds with (k/K)^K and MaybeKnown with
    1 - (k/K)^K - ((K-k)/K)^K (9/10: 1 - 0.9^10 - 0.1^10 = 0.6513). Without a correct greedy answer,
    Unknown holds with (mean over sampled prompts of (1 - c_j/s_j)^num_samples)^K. Only sampled
    prompts are resampled there: after adaptive sampling, that is what was drawn (the prompts up to
    the round of the first correct sample), which makes WeaklyKnown look firmer than a full draw
    would. None when the label needs sample counts that were not stored.
    """
    K, k = evidence.num_prompts, sum(evidence.greedy)
    if k == K:
        return 1.0
    if k > 0:
        return 1.0 - (k / K) ** K - ((K - k) / K) ** K
    if evidence.drawn is None:
        return None
    sampled = [(s, c) for s, c in zip(evidence.drawn, evidence.correct, strict=True) if s > 0]
    if not sampled:
        return None
    p_unknown = (sum((1.0 - c / s) ** num_samples for s, c in sampled) / len(sampled)) ** K
    return p_unknown if sum(c for _, c in sampled) == 0 else 1.0 - p_unknown


def needs_unsampled(evidence: Evidence, k: int) -> bool:
    """Whether the category from the first `k` prompts depends on samples adaptive sampling never drew."""
    if any(evidence.greedy[:k]) or evidence.drawn is None:
        return False
    return any(s == 0 for s in evidence.drawn[:k])


def budget_distribution(evidence: Evidence, k: int, m: int | None) -> dict[str, float] | None:
    """Category probabilities from the first `k` prompts and a random `m` of each one's samples.

    `m=None` takes every drawn sample. Greedy answers decide HighlyKnown and MaybeKnown outright;
    otherwise WeaklyKnown has the probability that some prompt's `m` samples hold a correct one.
    Unsampled prompts count as all wrong (`needs_unsampled`). None when sample counts are needed
    but were not stored.
    """
    greedy = evidence.greedy[:k]
    if all(greedy):
        return {"HighlyKnown": 1.0}
    if any(greedy):
        return {"MaybeKnown": 1.0}
    if evidence.drawn is None:
        return None
    p_unknown = 1.0
    for s, c in zip(evidence.drawn[:k], evidence.correct[:k], strict=True):
        p_unknown *= _no_correct(s, c, s if m is None else m)
    return {"WeaklyKnown": 1.0 - p_unknown, "Unknown": p_unknown}


def adaptive_cost(evidence: Evidence, k: int, m: int, rounds: Sequence[Sequence[int]]) -> float | None:
    """Expected generations of the first `k` prompts with `m` samples each under adaptive sampling.

    `k` greedy answers, then, when all are wrong, `m` samples per prompt round by round (`rounds`,
    over prompts < k) until a round holds a correct sample. None without stored sample counts.
    """
    if any(evidence.greedy[:k]):
        return float(k)
    if evidence.drawn is None:
        return None
    cost, p_reach = float(k), 1.0
    for prompts in rounds:
        cost += p_reach * m * len(prompts)
        for j in prompts:
            p_reach *= _no_correct(evidence.drawn[j], evidence.correct[j], m)
    return cost


def agreement(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """P(two independent category draws from the distributions `a` and `b` agree)."""
    return sum(p * b.get(c, 0.0) for c, p in a.items())


def edge_flip(a: Evidence, cat_a: str, b: Evidence, cat_b: str) -> bool:
    """Whether two labels of one example differ by one greedy answer or one sample at their boundary.

    HighlyKnown/MaybeKnown: the MaybeKnown side missed one greedy answer; MaybeKnown/WeaklyKnown or
    Unknown: the MaybeKnown side had one correct greedy answer; WeaklyKnown/Unknown: the WeaklyKnown
    side had one correct sample.
    """
    pair = {cat_a: a, cat_b: b}
    if set(pair) == {"HighlyKnown", "MaybeKnown"}:
        e = pair["MaybeKnown"]
        return sum(e.greedy) == e.num_prompts - 1
    if "MaybeKnown" in pair and set(pair) & {"WeaklyKnown", "Unknown"}:
        return sum(pair["MaybeKnown"].greedy) == 1
    if set(pair) == {"WeaklyKnown", "Unknown"}:
        e = pair["WeaklyKnown"]
        return e.correct is not None and sum(e.correct) == 1
    return False
