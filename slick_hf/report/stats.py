"""Ordinary least squares for the paper's Equation 1, with confidence intervals (statsmodels, scipy).

    Accuracy = b0 + b_kn * N_kn/|D| + b_unk * N_unk/|D|

Standard errors are statsmodels' OLS ones: s^2 (X^T X)^-1 with s^2 = RSS / (n - p), or the
cluster-robust sandwich (CR1) when points come in clusters; intervals use scipy's Student t quantile.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from slick_hf.errors import SlickError

EQ1_TERMS = ("b0", "b_kn", "b_unk")


# ---------------------------------------------------------------------------------------------
# Student t quantile.


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` > 0 degrees of freedom (scipy)."""
    from scipy import stats

    if not 0.0 < p < 1.0:
        raise SlickError(f"quantile level must be in (0, 1), got {p}")
    if df <= 0:
        raise SlickError(f"degrees of freedom must be > 0, got {df}")
    return float(stats.t.ppf(p, df))


# ---------------------------------------------------------------------------------------------
# OLS.


@dataclass
class OLSFit:
    """Coefficients, standard errors and `level` confidence intervals of one OLS fit."""

    names: list[str]
    coef: list[float]
    se: list[float | None]
    ci_low: list[float | None]
    ci_high: list[float | None]
    r2: float | None
    n: int
    df: int
    level: float
    t_crit: float | None
    rank_deficient: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def term(self, name: str) -> dict:
        i = self.names.index(name)
        return {"coef": self.coef[i], "se": self.se[i], "ci": (self.ci_low[i], self.ci_high[i])}

    def ci_excludes_zero(self, name: str) -> bool | None:
        lo, hi = self.ci_low[self.names.index(name)], self.ci_high[self.names.index(name)]
        if lo is None or hi is None:
            return None
        return lo > 0 or hi < 0


def ols(
    X: np.ndarray, y: np.ndarray, names: Sequence[str], level: float = 0.95, clusters: Sequence | None = None
) -> OLSFit:
    """Fit y = X b by least squares. X must already hold the intercept column.

    With `clusters` (one label per point: points of one run are not independent) the covariance is
    the cluster-robust sandwich (CR1: G/(G-1) (n-1)/(n-p) small-sample factor) and the t quantile has
    G - 1 degrees of freedom; without, it is s^2 (X^T X)^-1 with n - p. With too few points or
    clusters, or a rank-deficient X, coefficients are the minimum-norm solution and standard errors
    and intervals are None.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise SlickError(f"ols: X must be (n, p) and y (n,), got {X.shape} and {y.shape}")
    n, p = X.shape
    if n == 0:
        raise SlickError("ols: no points to fit")
    coef, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    rss = float(resid @ resid)  # R^2 also for the rank-deficient fits statsmodels is not asked about
    tss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - rss / tss if tss > 0 else None
    df = n - p
    deficient = rank < p
    groups = sorted(set(clusters), key=str) if clusters is not None else None
    if groups is not None:
        df = min(df, len(groups) - 1)
    se: list[float | None] = [None] * p
    lo: list[float | None] = [None] * p
    hi: list[float | None] = [None] * p
    t_crit = None
    if df > 0 and not deficient:
        import statsmodels.api as sm

        model = sm.OLS(y, X)
        if groups is None:
            fit = model.fit()
        else:
            codes = np.array([groups.index(c) for c in clusters])
            fit = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
        t_crit = t_quantile(0.5 + level / 2.0, df)
        se = [float(math.sqrt(max(v, 0.0))) for v in np.diag(fit.cov_params())]
        lo = [float(c - t_crit * s) for c, s in zip(coef, se, strict=True)]
        hi = [float(c + t_crit * s) for c, s in zip(coef, se, strict=True)]
    return OLSFit(
        names=list(names),
        coef=[float(c) for c in coef],
        se=se,
        ci_low=lo,
        ci_high=hi,
        r2=r2,
        n=n,
        df=df,
        level=level,
        t_crit=t_crit,
        rank_deficient=bool(deficient),
    )


def fit_equation1(
    accuracy: Sequence[float],
    known_fit: Sequence[float],
    unknown_fit: Sequence[float],
    level: float = 0.95,
    clusters: Sequence | None = None,
) -> OLSFit:
    """Equation 1: accuracy (percent) on an intercept, N_kn/|D| and N_unk/|D| (fractions); `clusters`
    (e.g. the run of each point) makes the intervals cluster-robust."""
    acc = np.asarray(accuracy, dtype=float)
    X = np.column_stack([np.ones(len(acc)), np.asarray(known_fit, float), np.asarray(unknown_fit, float)])
    return ols(X, acc, EQ1_TERMS, level, clusters)


# ---------------------------------------------------------------------------------------------
# Intervals of accuracies.


@dataclass
class Estimate:
    """A mean with its standard error and `level` interval, and how many values and trials made it."""

    mean: float
    se: float
    low: float
    high: float
    seeds: int
    n: int
    se_questions: float = 0.0  # the part of `se` that more test questions (not only more seeds) would shrink

    def as_dict(self) -> dict:
        """The estimate as a plain dict (report.json)."""
        return asdict(self)


def seed_mean(accuracies: Sequence[float], n: int, level: float = 0.95) -> Estimate | None:
    """Mean accuracy (fractions) of one variant over seeds, each measured on the same `n` questions.

    Its uncertainty has two parts: questions (binomial, p(1-p)/n per seed) and training seeds (their
    spread). The standard error is the larger of the between-seed one (sd / sqrt(seeds)) and the
    binomial one of the pooled accuracy, so a single seed or seeds that happen to agree still carry
    the test set's own noise; the interval is normal (t with seeds - 1 df when the spread decides).
    """
    if not accuracies or n <= 0:
        return None
    k = len(accuracies)
    mean = sum(accuracies) / k
    binomial = math.sqrt(max(mean * (1 - mean), 1.0 / n) / (n * k))
    spread = statistics.stdev(accuracies) / math.sqrt(k) if k > 1 else 0.0
    se = max(binomial, spread)
    q = t_quantile(0.5 + level / 2.0, k - 1) if spread > binomial else NormalDist().inv_cdf(0.5 + level / 2.0)
    low, high = max(0.0, mean - q * se), min(1.0, mean + q * se)  # an accuracy: in [0, 1]
    return Estimate(mean, se, low, high, k, n, binomial if binomial >= spread else 0.0)


def difference(a: Estimate, b: Estimate, level: float = 0.95) -> Estimate:
    """a - b with independent errors (conservative for two runs scored on the same questions)."""
    se = math.sqrt(a.se**2 + b.se**2)
    q = NormalDist().inv_cdf(0.5 + level / 2.0)
    d = a.mean - b.mean
    by_questions = math.sqrt(a.se_questions**2 + b.se_questions**2)
    return Estimate(d, se, d - q * se, d + q * se, min(a.seeds, b.seeds), min(a.n, b.n), by_questions)


def mean_interval(values: Sequence[float], level: float = 0.95) -> Estimate | None:
    """The mean of independent values with its t interval (None with fewer than two)."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values))
    q = t_quantile(0.5 + level / 2.0, len(values) - 1)
    return Estimate(mean, se, mean - q * se, mean + q * se, len(values), len(values))


def average(estimates: Sequence[Estimate], level: float = 0.95) -> Estimate | None:
    """The mean of independent estimates (e.g. gaps at several Unknown ratios), normal interval as `difference`."""
    if not estimates:
        return None
    k = len(estimates)
    mean = sum(e.mean for e in estimates) / k
    se = math.sqrt(sum(e.se**2 for e in estimates)) / k
    q = NormalDist().inv_cdf(0.5 + level / 2.0)
    by_questions = math.sqrt(sum(e.se_questions**2 for e in estimates)) / k
    return Estimate(mean, se, mean - q * se, mean + q * se, min(e.seeds for e in estimates), k, by_questions)


def growth_to_decide(e: Estimate, bound: float = 0.0, level: float = 0.95, power: float = 0.8) -> float | None:
    """How many times the data behind `e` must grow for its `level` interval to exclude `bound` with
    probability `power`, were the observed mean the true one (the normal-approximation sample size:
    ((z_level + z_power) se / |mean - bound|)^2, the standard error shrinking as 1/sqrt(data)).
    None when the mean sits on the bound (no amount of data decides it)."""
    gap = abs(e.mean - bound)
    if gap == 0 or e.se <= 0:
        return None
    z = NormalDist().inv_cdf(0.5 + level / 2.0) + NormalDist().inv_cdf(power)
    return (z * e.se / gap) ** 2
