"""slick_hf.core.evidence on hand-built evidence: stability, budgets, costs and edge flips derived by hand."""

from math import comb, isclose

import pytest

from slick_hf.annotate.rows import adaptive_rounds
from slick_hf.core.evidence import (
    Evidence,
    adaptive_cost,
    agreement,
    bootstrap_stability,
    budget_distribution,
    edge_flip,
    needs_unsampled,
)


def greedy(k: int, K: int = 10) -> tuple[bool, ...]:
    return (True,) * k + (False,) * (K - k)


UNSAMPLED = (0,) * 10


def test_all_correct_greedy_answers_are_fully_stable():
    assert bootstrap_stability(Evidence(greedy(10), UNSAMPLED, UNSAMPLED), 16) == 1.0


def test_nine_of_ten_with_no_sampled_evidence_is_derived_by_hand():
    # a resample is HighlyKnown with 0.9^10 and has no correct greedy answer with 0.1^10
    value = bootstrap_stability(Evidence(greedy(9), UNSAMPLED, UNSAMPLED), 16)
    assert value == pytest.approx(1 - 0.9**10 - 0.1**10, abs=1e-15)
    assert value < 1.0 and round(value, 4) == 0.6513
    # one correct greedy answer is as fragile: no correct greedy answer in 0.9^10 of the resamples
    assert bootstrap_stability(Evidence(greedy(1), UNSAMPLED, UNSAMPLED), 16) == pytest.approx(1 - 0.1**10 - 0.9**10)
    assert bootstrap_stability(Evidence(greedy(5), UNSAMPLED, UNSAMPLED), 16) == pytest.approx(1 - 2 * 0.5**10)


def test_unknown_with_no_correct_sample_is_stable_and_weakly_known_follows_its_samples():
    assert bootstrap_stability(Evidence(greedy(0), (16,) * 10, (0,) * 10), 16) == 1.0
    # full sampling, one correct sample in prompt 0: a resampled prompt 0 misses it with (15/16)^16
    full = Evidence(greedy(0), (16,) * 10, (1,) + (0,) * 9)
    p_unknown = (0.9 + 0.1 * (15 / 16) ** 16) ** 10
    assert bootstrap_stability(full, 16) == pytest.approx(1 - p_unknown)
    # adaptive sampling stopped after round 1 (prompt 0 only): only what was drawn is resampled
    adaptive = Evidence(greedy(0), (16,) + (0,) * 9, (1,) + (0,) * 9)
    assert bootstrap_stability(adaptive, 16) == pytest.approx(1 - (15 / 16) ** 160)
    assert bootstrap_stability(adaptive, 16) > bootstrap_stability(full, 16)


def test_without_sample_counts_only_greedy_decided_labels_are_computable():
    assert bootstrap_stability(Evidence(greedy(10)), 16) == 1.0
    assert bootstrap_stability(Evidence(greedy(3)), 16) == pytest.approx(1 - 0.3**10 - 0.7**10)
    assert bootstrap_stability(Evidence(greedy(0)), 16) is None
    assert budget_distribution(Evidence(greedy(0)), 10, 16) is None
    assert Evidence(greedy(0)).category() is None and Evidence(greedy(4)).category() == "MaybeKnown"


def test_budget_distribution_takes_the_first_prompts_and_a_random_share_of_samples():
    e = Evidence((False, False, True) + (True,) * 7, (16, 16, 0) + (0,) * 7, (0, 1, 0) + (0,) * 7)
    assert budget_distribution(e, 10, 16) == {"MaybeKnown": 1.0}
    assert budget_distribution(e, 1, 16) == {"WeaklyKnown": 0.0, "Unknown": 1.0}
    assert budget_distribution(e, 2, 16) == {"WeaklyKnown": 1.0, "Unknown": 0.0}
    # 8 of 16 samples, one of them correct: missed with C(15, 8) / C(16, 8) = 1/2
    assert budget_distribution(e, 2, 8)["Unknown"] == pytest.approx(comb(15, 8) / comb(16, 8)) == pytest.approx(0.5)
    assert budget_distribution(Evidence(greedy(10)), 3, 1) == {"HighlyKnown": 1.0}
    assert not needs_unsampled(e, 2) and not needs_unsampled(e, 10)
    assert needs_unsampled(Evidence(greedy(0), (16,) + (0,) * 9, (1,) + (0,) * 9), 3)


def test_adaptive_cost_follows_the_doubling_rounds():
    rounds = adaptive_rounds(10)  # [0], [1, 2], [3..6], [7..9]
    assert adaptive_cost(Evidence(greedy(2)), 10, 16, rounds) == 10
    assert adaptive_cost(Evidence(greedy(0), (16,) * 10, (0,) * 10), 10, 16, rounds) == 10 + 160
    hit_in_round_2 = Evidence(greedy(0), (16, 16, 16) + (0,) * 7, (0, 0, 3) + (0,) * 7)
    assert adaptive_cost(hit_in_round_2, 10, 16, rounds) == 10 + 3 * 16
    # 4 of 16 samples: round 2 holds a correct one with 1 - C(13, 4) / C(16, 4); else rounds 3 and 4 follow
    miss = comb(13, 4) / comb(16, 4)
    assert adaptive_cost(hit_in_round_2, 10, 4, rounds) == pytest.approx(10 + 4 * 3 + miss * 4 * 7)


def test_agreement_of_two_draws():
    assert agreement({"HighlyKnown": 1.0}, {"HighlyKnown": 1.0}) == 1.0
    assert isclose(agreement({"WeaklyKnown": 0.5, "Unknown": 0.5}, {"WeaklyKnown": 0.2, "Unknown": 0.8}), 0.5)
    assert agreement({"MaybeKnown": 1.0}, {"Unknown": 1.0}) == 0.0


@pytest.mark.parametrize(
    ("a", "cat_a", "b", "cat_b", "edge"),
    [
        (Evidence(greedy(10)), "HighlyKnown", Evidence(greedy(9)), "MaybeKnown", True),
        (Evidence(greedy(10)), "HighlyKnown", Evidence(greedy(8)), "MaybeKnown", False),
        (Evidence(greedy(1)), "MaybeKnown", Evidence(greedy(0), (16,) * 10, (0,) * 10), "Unknown", True),
        (Evidence(greedy(2)), "MaybeKnown", Evidence(greedy(0), (16,) * 10, (0,) * 10), "Unknown", False),
        (
            Evidence(greedy(0), (16,) * 10, (1,) + (0,) * 9),
            "WeaklyKnown",
            Evidence(greedy(0), (16,) * 10, (0,) * 10),
            "Unknown",
            True,
        ),
        (
            Evidence(greedy(0), (16,) * 10, (2,) + (0,) * 9),
            "WeaklyKnown",
            Evidence(greedy(0), (16,) * 10, (0,) * 10),
            "Unknown",
            False,
        ),
        (Evidence(greedy(10)), "HighlyKnown", Evidence(greedy(0), (16,) * 10, (0,) * 10), "Unknown", False),
    ],
)
def test_edge_flips_are_one_answer_or_one_sample_from_the_boundary(a, cat_a, b, cat_b, edge):
    assert edge_flip(a, cat_a, b, cat_b) is edge
    assert edge_flip(b, cat_b, a, cat_a) is edge


# ---------------------------------------------------------------- the posterior predictive (slick_label_stability)


def test_predictive_stability_under_a_uniform_prior_is_derived_by_hand():
    from math import factorial as f

    from slick_hf.core.predictive import StabilityPrior, predictive_stability

    uniform = StabilityPrior(greedy=(1.0, 1.0), sample=(1.0, 1.0), rows=1)
    # 10 of 10 correct: posterior Beta(11, 1); 10 fresh answers all correct with B(21, 1) / B(11, 1) = 11/21
    assert predictive_stability(Evidence(greedy(10)), "HighlyKnown", uniform, 16) == pytest.approx(11 / 21)
    # 9 of 10: Beta(10, 2); all 10 fresh correct with B(20, 2) / B(10, 2) = 110/420, all wrong with
    # B(10, 12) / B(10, 2) = G(12) G(12) / (G(22) G(2)) = 11! 11! / 21!
    p_all = 110 / 420
    p_none = f(11) * f(11) / f(21)
    value = predictive_stability(Evidence(greedy(9)), "MaybeKnown", uniform, 16)
    assert value == pytest.approx(1 - p_all - p_none) and value < 1.0
    # no correct greedy answer, no correct sample of 160: Unknown again with
    # P(10 fresh greedy wrong | Beta(1, 11)) x P(160 fresh samples wrong | Beta(1, 161)) = 11/21 x 161/321
    unknown = Evidence(greedy(0), (16,) * 10, (0,) * 10)
    assert predictive_stability(unknown, "Unknown", uniform, 16) == pytest.approx(11 / 21 * 161 / 321)
    assert predictive_stability(Evidence(greedy(0)), "Unknown", uniform, 16) is None  # no sample counts


def test_the_fitted_prior_follows_the_split():
    from slick_hf.core.predictive import fit_prior, split_stability

    known = [Evidence(greedy(10), UNSAMPLED, UNSAMPLED)] * 30 + [Evidence(greedy(9), UNSAMPLED, UNSAMPLED)] * 2
    mixed = [Evidence(greedy(k), UNSAMPLED, UNSAMPLED) for k in (0, 2, 5, 8, 10) * 6]
    firm, _ = split_stability(known, ["HighlyKnown"] * 30 + ["MaybeKnown"] * 2, 16)
    loose, _ = split_stability([known[0], *mixed], ["HighlyKnown"] + ["MaybeKnown"] * 30, 16)
    assert firm[0] > loose[0]  # 10/10 is firmer where nearly every example is 10/10
    assert fit_prior(known).greedy[0] > fit_prior(known).greedy[1]
    assert fit_prior(known).sample is None  # no example without a correct greedy answer
    again, prior = split_stability(known, ["HighlyKnown"] * 30 + ["MaybeKnown"] * 2, 16)
    assert again == firm and prior == fit_prior(known)  # deterministic
