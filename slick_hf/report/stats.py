"""Ordinary least squares for the paper's Equation 1, with confidence intervals, in numpy only.

    Accuracy = b0 + b_kn * N_kn/|D| + b_unk * N_unk/|D|

Standard errors come from s^2 (X^T X)^-1 with s^2 = RSS / (n - p); intervals use the Student t
quantile with n - p degrees of freedom. scipy is used for the quantile when it is installed;
otherwise the quantile is computed here (regularised incomplete beta by continued fraction,
inverted by bisection), which agrees with scipy to ~1e-10. No normal approximation is needed.
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


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` > 0 degrees of freedom (scipy when installed)."""
    if not 0.0 < p < 1.0:
        raise SlickError(f"quantile level must be in (0, 1), got {p}")
    if df <= 0:
        raise SlickError(f"degrees of freedom must be > 0, got {df}")
    try:
        from scipy import stats  # optional

        return float(stats.t.ppf(p, df))
    except ImportError:
        pass
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


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
    rss = float(resid @ resid)
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
        bread = np.linalg.inv(X.T @ X)
        if groups is None:
            cov = rss / df * bread
        else:
            labels = np.array([str(c) for c in clusters])
            meat = np.zeros((p, p))
            for g in groups:
                score = X[labels == str(g)].T @ resid[labels == str(g)]
                meat += np.outer(score, score)
            factor = len(groups) / (len(groups) - 1) * (n - 1) / (n - p)
            cov = factor * bread @ meat @ bread
        t_crit = t_quantile(0.5 + level / 2.0, df)
        se = [float(math.sqrt(max(v, 0.0))) for v in np.diag(cov)]
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
    return Estimate(mean, se, max(0.0, mean - q * se), min(1.0, mean + q * se), k, n)  # an accuracy: in [0, 1]


def difference(a: Estimate, b: Estimate, level: float = 0.95) -> Estimate:
    """a - b with independent errors (conservative for two runs scored on the same questions)."""
    se = math.sqrt(a.se**2 + b.se**2)
    q = NormalDist().inv_cdf(0.5 + level / 2.0)
    d = a.mean - b.mean
    return Estimate(d, se, d - q * se, d + q * se, min(a.seeds, b.seeds), min(a.n, b.n))


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
    return Estimate(mean, se, mean - q * se, mean + q * se, min(e.seeds for e in estimates), k)
