"""The report's intervals recover their nominal coverage on synthetic data with a known truth."""

import numpy as np
import pytest

from slick_hf.core.intervals import proportion_interval
from slick_hf.report.stats import difference, fit_equation1, seed_mean


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5])
def test_wilson_interval_covers_the_true_proportion(p):
    rng = np.random.default_rng(0)
    n = 75
    hits = [lo <= p <= hi for lo, hi in (proportion_interval(int(k), n) for k in rng.binomial(n, p, 4000))]
    assert 0.93 <= np.mean(hits) <= 0.985
    assert proportion_interval(0, 0) is None and proportion_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


def _clustered_points(rng, b_unk: float, runs: int = 24, per_run: int = 4):
    """Points of runs: the fitted shares vary mostly between runs, and each run has its own offset."""
    known, unknown, acc, label = [], [], [], []
    for r in range(runs):
        base_u, offset = rng.uniform(0, 1), rng.normal(0, 4.0)
        for _ in range(per_run):
            k, u = rng.uniform(0.5, 1.0), min(1.0, max(0.0, base_u + rng.normal(0, 0.05)))
            known.append(k)
            unknown.append(u)
            acc.append(30 + 8 * k + b_unk * u + offset + rng.normal(0, 1.0))
            label.append(r)
    return acc, known, unknown, label


def test_cluster_robust_equation1_covers_where_plain_ols_does_not():
    rng = np.random.default_rng(1)
    plain, robust = [], []
    for _ in range(400):
        acc, kn, unk, runs = _clustered_points(rng, -8.0)
        for fits, clusters in ((plain, None), (robust, runs)):
            lo, hi = fit_equation1(acc, kn, unk, clusters=clusters).term("b_unk")["ci"]
            fits.append(lo <= -8.0 <= hi)
    assert np.mean(robust) >= 0.9
    assert np.mean(plain) < np.mean(robust) - 0.15  # points of one run are not independent


def test_seed_mean_covers_with_training_noise_and_differences_detect_effects():
    rng = np.random.default_rng(2)
    n, truth, covered = 600, 0.4, []
    for _ in range(2000):
        accs = [rng.binomial(n, min(1, max(0, truth + rng.normal(0, 0.03)))) / n for _ in range(3)]
        est = seed_mean(accs, n)
        covered.append(est.low <= truth <= est.high)
    assert np.mean(covered) >= 0.9
    a, b = seed_mean([0.50, 0.52, 0.49], 600), seed_mean([0.40, 0.41, 0.42], 600)
    assert difference(a, b).low > 0 and difference(b, b).low < 0 < difference(b, b).high


def test_growth_to_decide_gives_the_sample_that_decides_with_80_percent_power():
    """Seeds with a true gap of 2 points and a spread of 4: `growth_to_decide` on a pilot of 3 seeds per arm says
    how many seeds make a difference's interval exclude 0; at that many, about 80% of experiments do."""
    from slick_hf.report.stats import Estimate, growth_to_decide

    truth, spread, n = 0.02, 0.04, 10**6  # a huge test set: the seeds' spread alone decides
    pilot = Estimate(truth, spread * (2 / 3) ** 0.5, 0.0, 0.0, 3, n)  # se of a 3-vs-3 difference of means
    seeds = int(np.ceil(growth_to_decide(pilot) * 3))
    rng = np.random.default_rng(3)
    decided = []
    for _ in range(2000):
        a = seed_mean(list(0.3 + truth + rng.normal(0, spread, seeds)), n)
        b = seed_mean(list(0.3 + rng.normal(0, spread, seeds)), n)
        decided.append(difference(a, b).low > 0)
    assert 0.74 <= np.mean(decided) <= 0.86
    assert growth_to_decide(Estimate(0.0, 0.01, -0.02, 0.02, 3, n)) is None  # on the bound: nothing decides it
    assert growth_to_decide(Estimate(-0.02, 0.01, -0.04, 0.0, 3, n), bound=-0.03) == pytest.approx(
        growth_to_decide(Estimate(0.01, 0.01, -0.01, 0.03, 3, n))
    )


def test_seed_mean_records_whether_questions_or_seeds_dominate():
    tight_seeds = seed_mean([0.40, 0.40, 0.41], 100)  # binomial noise of 100 questions dominates
    assert tight_seeds.se_questions == pytest.approx(tight_seeds.se)
    spread_seeds = seed_mean([0.30, 0.40, 0.50], 10**5)
    assert spread_seeds.se_questions == 0.0
    assert difference(tight_seeds, spread_seeds).se_questions == pytest.approx(tight_seeds.se)
