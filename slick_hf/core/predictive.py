"""Label stability as a prediction: how likely an independent re-annotation gives the same category.

A re-annotation draws new exemplar sets and new samples. Under the model here, an example has its own
chance that a prompt's greedy answer is correct, and (when no greedy answer is) its own chance that a
sample is correct; across the examples of a split those chances follow Beta distributions, fitted to
the split by maximum likelihood (beta-binomial, empirical Bayes). An example's evidence updates them
(a Beta posterior); the stability is the posterior predictive probability that a fresh draw of the
same budget (K greedy answers, K x S samples) lands in the example's category:

- HighlyKnown: all K fresh greedy answers correct; MaybeKnown: some but not all;
- WeaklyKnown / Unknown: no fresh greedy answer correct, and some / no fresh sample correct.

Unlike a bootstrap of the example's own prompts, this is not certain at the edges (10 of 10 correct
greedy answers do not promise 10 of 10 again), and it is checked against a real re-annotation with
another `--seed` by `slick-hf stability --compare`. The sample likelihood is the same whatever the
stopping rule, so adaptive sampling's early stop leaves it valid for what was drawn.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from math import exp

from slick_hf.core.evidence import Evidence

LOG_BOUND = 8.0  # Beta parameters are fitted in log space within [e^-8, e^8]: finite even on tiny splits


def _log_beta(a: float, b: float) -> float:
    from scipy.special import betaln

    return float(betaln(a, b))


def fit_beta_binomial(successes: Sequence[int], trials: Sequence[int]) -> tuple[float, float]:
    """Maximum-likelihood Beta(a, b) of per-example success chances, from successes out of trials."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import betaln

    k, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)

    def nll(log_ab):
        a, b = np.exp(np.clip(log_ab, -LOG_BOUND, LOG_BOUND))
        return -float(np.sum(betaln(a + k, b + n - k) - betaln(a, b)))

    fit = minimize(nll, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})
    a, b = np.exp(np.clip(fit.x, -LOG_BOUND, LOG_BOUND))
    return float(a), float(b)


@dataclass(frozen=True)
class StabilityPrior:
    """The Beta priors of one split: per-prompt greedy accuracy, and per-sample accuracy of the examples
    without a correct greedy answer (None where sample counts were not stored or there is no such example)."""

    greedy: tuple[float, float]
    sample: tuple[float, float] | None
    rows: int

    def to_dict(self) -> dict:
        """The priors as a plain dict (recorded in the annotation's metadata)."""
        return asdict(self)


def fit_prior(evidence: Sequence[Evidence]) -> StabilityPrior:
    """Fit the greedy and sample priors of a split's examples."""
    greedy = fit_beta_binomial([sum(e.greedy) for e in evidence], [e.num_prompts for e in evidence])
    sampled = [e for e in evidence if not any(e.greedy) and e.drawn is not None and sum(e.drawn) > 0]
    sample = fit_beta_binomial([sum(e.correct) for e in sampled], [sum(e.drawn) for e in sampled]) if sampled else None
    return StabilityPrior(greedy, sample, len(evidence))


def predictive_stability(evidence: Evidence, category: str, prior: StabilityPrior, num_samples: int) -> float | None:
    """P(a fresh annotation of the same budget gives `category`), under `prior` updated by `evidence`.

    With a Beta(a, b) greedy prior and k of K correct greedy answers, K fresh ones are all correct with
    B(a + k + K, b + K - k) / B(a + k, b + K - k) and all wrong with B(a + k, b + 2K - k) / B(a + k, b + K - k)
    (a uniform prior, a = b = 1, and 10 of 10: 11/21). None when the label needs sample counts that
    were not stored.
    """
    K, k = evidence.num_prompts, sum(evidence.greedy)
    a, b = prior.greedy[0] + k, prior.greedy[1] + K - k
    base = _log_beta(a, b)
    p_all = exp(_log_beta(a + K, b) - base)
    p_none = exp(_log_beta(a, b + K) - base)
    if category == "HighlyKnown":
        return p_all
    if category == "MaybeKnown":
        return max(0.0, 1.0 - p_all - p_none)
    if evidence.drawn is None or prior.sample is None:
        return None
    c, n = sum(evidence.correct), sum(evidence.drawn)
    a, b = prior.sample[0] + c, prior.sample[1] + n - c
    p_no_sample = exp(_log_beta(a, b + K * num_samples) - _log_beta(a, b))
    return p_none * (p_no_sample if category == "Unknown" else 1.0 - p_no_sample)


def split_stability(
    evidence: Sequence[Evidence], categories: Sequence[str], num_samples: int
) -> tuple[list[float | None], StabilityPrior]:
    """The stability of every judged example of one split, with the prior fitted to the split."""
    prior = fit_prior(evidence)
    values = [predictive_stability(e, c, prior, num_samples) for e, c in zip(evidence, categories, strict=True)]
    return values, prior
