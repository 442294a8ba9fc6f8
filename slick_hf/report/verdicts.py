"""The paper's findings judged one by one: reproduced, not reproduced or inconclusive, with the statistic
that decides each (95% intervals: `slick_hf.report.stats`).

1. Unknown examples are fitted more slowly than Known ones: per run, Known minus Unknown share fitted
   at EARLY_STOP; a t interval over runs.
2. Fitting Unknown examples lowers test accuracy: Equation 1's b_unk, cluster-robust over runs, in
   distribution and out of distribution.
3. At EARLY_STOP D and D_Known are close, at CONVERGENCE D_Known is better: D_Known minus D, averaged
   over the Unknown ratios both were run at.
4. HighlyKnown and MaybeKnown fine-tuning sets do at least as well as the natural mix (non-inferiority
   margin `NON_INFERIORITY` points), and MaybeKnown examples matter for MaybeKnown test questions
   (D_MaybeKnown against D_HighlyKnown on those questions).
5. D_IDK raises accuracy on the questions it answers: D_IDK's accuracy on answered questions minus D's
   accuracy, both at 50% Unknown.

An inconclusive verdict says what would decide it (`to_decide`): how many seeds (or runs, or test
questions) the interval needs to exclude its bound with 80% power, were the observed value the true one.
"""

from __future__ import annotations

import math

from slick_hf.report.analysis import Eq1Fit, dynamics_rows, estimate, known_vs_d
from slick_hf.report.stats import Estimate, average, difference, growth_to_decide, mean_interval
from slick_hf.runs import Runs

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NON_INFERIORITY = 0.03  # 3 points: "at least as well" within this margin


def judge(e: Estimate | None, expect_positive: bool = True) -> str:
    """Reproduced when the interval lies on the expected side of 0, not reproduced on the other, else inconclusive."""
    if e is None:
        return INCONCLUSIVE
    low, high = (e.low, e.high) if expect_positive else (-e.high, -e.low)
    return REPRODUCED if low > 0 else NOT_REPRODUCED if high < 0 else INCONCLUSIVE


def _pts(e: Estimate) -> str:
    return f"{100 * e.mean:+.1f} points [{100 * e.low:+.1f}, {100 * e.high:+.1f}]"


def to_decide(e: Estimate, bound: float, now: int, unit: str, questions: int | None = None) -> dict:
    """What would decide `e` against `bound` (80% power at the observed value): `now` -> needed `unit`s
    (seeds per variant, or runs), and test questions where the test set's binomial noise dominates."""
    growth = growth_to_decide(e, bound)
    if growth is None:
        return {"unit": unit, "now": now, "needed": None, "text": "the observed value sits on the bound"}
    out = {"unit": unit, "now": now, "needed": max(now + 1, math.ceil(growth * now)), "growth": growth}
    text = f"about {out['needed']} {unit} (now {now})"
    if questions and e.se_questions**2 >= e.se**2 / 2:  # questions carry most of the variance
        out |= {"questions_now": questions, "questions_needed": max(questions + 1, math.ceil(growth * questions))}
        text += f", or about {out['questions_needed']} test questions (now {questions})"
    out["text"] = text + " would decide it with 80% power, were the observed value the true one"
    return out


def _verdict(
    number: int,
    claim: str,
    verdict: str,
    statistic: str,
    value: Estimate | dict | None = None,
    decide: dict | None = None,
) -> dict:
    value = value.as_dict() if isinstance(value, Estimate) else value
    out = {"finding": number, "claim": claim, "verdict": verdict, "statistic": statistic, "value": value}
    if verdict == INCONCLUSIVE and decide is not None:
        out["to_decide"] = decide
    return out


def slower_fitting(runs: Runs) -> dict:
    """Finding 1."""
    claim = "Unknown fine-tuning examples are fitted more slowly than Known ones (EARLY_STOP)"
    rows = [r for r in dynamics_rows(runs) if r["known_fit_es"] is not None and r["unknown_fit_es"] is not None]
    rows = [r for r in rows if runs.runs[r["run"]].kind != "idk"]
    gap = mean_interval([(r["known_fit_es"] - r["unknown_fit_es"]) / 100 for r in rows])
    if gap is None:
        return _verdict(1, claim, INCONCLUSIVE, f"{len(rows)} run(s) fit both kinds; 2 or more are needed")
    stat = f"Known minus Unknown share fitted at EARLY_STOP, mean over {len(rows)} runs: {_pts(gap)}"
    return _verdict(1, claim, judge(gap), stat, gap, to_decide(gap, 0.0, len(rows), "runs"))


def unknown_lowers_accuracy(fits: list[Eq1Fit], label: str) -> dict:
    """Finding 2, on one test split."""
    where = "in distribution" if label == "test" else "out of distribution"
    claim = f"Fitting Unknown examples lowers test accuracy {where} (Equation 1: b_unk < 0)"
    fit = next((f.fit for f in fits if f.label == label), None)
    if fit is None or fit.term("b_unk")["ci"][0] is None:
        return _verdict(2, claim, INCONCLUSIVE, "Equation 1 could not be fitted with an interval (too few runs)")
    t = fit.term("b_unk")
    e = Estimate(t["coef"] / 100, t["se"] / 100, t["ci"][0] / 100, t["ci"][1] / 100, 0, fit.n)
    clusters = fit.df + 1
    stat = f"b_unk = {t['coef']:.1f} [{t['ci'][0]:.1f}, {t['ci'][1]:.1f}] ({fit.n} points, {clusters} runs)"
    decide = to_decide(e, 0.0, clusters, "runs in the fit")
    return _verdict(2, claim, judge(e, expect_positive=False), stat, e, decide)


def known_subset(runs: Runs) -> dict:
    """Finding 3, on the in-distribution test."""
    claim = "At EARLY_STOP D and D_Known are close; at CONVERGENCE D_Known is more accurate"
    rows = [r for r in known_vs_d(runs, "test") if not r["same_run"]]
    gaps = {p: [Estimate(**r[f"gap_{p}"]) for r in rows if r[f"gap_{p}"]] for p in ("early_stop", "convergence")}
    es, conv = average(gaps["early_stop"]), average(gaps["convergence"])
    if es is None or conv is None:
        return _verdict(3, claim, INCONCLUSIVE, "no Unknown ratio with both D and D_Known evaluated")
    close = es.low <= 0 <= es.high
    verdict = REPRODUCED if close and conv.low > 0 else NOT_REPRODUCED if conv.high < 0 or not close else INCONCLUSIVE
    stat = f"D_Known minus D over {len(gaps['convergence'])} ratio(s): EARLY_STOP {_pts(es)}, CONVERGENCE {_pts(conv)}"
    decide = to_decide(conv, 0.0, conv.seeds, "seeds per variant", runs.question_count("test"))
    return _verdict(3, claim, verdict, stat, {"early_stop": es.as_dict(), "convergence": conv.as_dict()}, decide)


def easy_sets(runs: Runs) -> list[dict]:
    """Finding 4: non-inferiority of D_HighlyKnown and D_MaybeKnown to D_Natural, and MaybeKnown's role."""
    margin = f"{100 * NON_INFERIORITY:g} points"
    claim_a = f"D_HighlyKnown and D_MaybeKnown do at least as well as D_Natural (within {margin})"
    claim_b = "MaybeKnown fine-tuning examples matter for MaybeKnown test questions (D_MaybeKnown > D_HighlyKnown)"
    natural, hk, mk = (
        estimate(runs.get(n), "early_stop", "test") for n in ("D_Natural", "D_HighlyKnown", "D_MaybeKnown")
    )
    out = []
    if natural is None or hk is None or mk is None:
        out.append(_verdict(4, claim_a, INCONCLUSIVE, "D_Natural, D_HighlyKnown or D_MaybeKnown was not run"))
    else:
        gaps = {"D_HighlyKnown": difference(hk, natural), "D_MaybeKnown": difference(mk, natural)}
        verdict = (
            NOT_REPRODUCED
            if any(g.high < 0 for g in gaps.values())
            else REPRODUCED
            if all(g.low > -NON_INFERIORITY for g in gaps.values())
            else INCONCLUSIVE
        )
        stat = "; ".join(f"{n} minus D_Natural at EARLY_STOP {_pts(g)}" for n, g in gaps.items())
        # the undecided gap: one whose interval crosses -margin, judged against the bound its mean is beyond
        open_gaps = [g for g in gaps.values() if g.low <= -NON_INFERIORITY]
        decide = None
        if open_gaps:
            g = min(open_gaps, key=lambda g: g.mean)
            bound = -NON_INFERIORITY if g.mean > -NON_INFERIORITY else 0.0
            decide = to_decide(g, bound, g.seeds, "seeds per variant", g.n)
        out.append(_verdict(4, claim_a, verdict, stat, {n: g.as_dict() for n, g in gaps.items()}, decide))
    key = "exact_match_MaybeKnown"
    on_mk = [estimate(runs.get(n), "early_stop", "test", key) for n in ("D_MaybeKnown", "D_HighlyKnown")]
    if None in on_mk:
        out.append(_verdict(4, claim_b, INCONCLUSIVE, "D_MaybeKnown or D_HighlyKnown was not run"))
    else:
        gap = difference(*on_mk)
        stat = f"D_MaybeKnown minus D_HighlyKnown on MaybeKnown test questions at EARLY_STOP: {_pts(gap)}"
        decide = to_decide(gap, 0.0, gap.seeds, "seeds per variant", gap.n)
        out.append(_verdict(4, claim_b, judge(gap), stat, gap, decide))
    return out


def idk_helps(runs: Runs) -> dict:
    """Finding 5, on the in-distribution test at EARLY_STOP."""
    claim = 'Relabelling Unknown examples as "I don\'t know" raises accuracy on the questions answered'
    idk = estimate(runs.get("D_IDK_unk0.50"), "early_stop", "test", "exact_match_answered")
    d = estimate(runs.get("D_unk0.50"), "early_stop", "test")
    if idk is None or d is None:
        return _verdict(5, claim, INCONCLUSIVE, "D_IDK_unk0.50 or D_unk0.50 was not run")
    gap = difference(idk, d)
    stat = f"D_IDK's accuracy on answered minus D's accuracy (50% Unknown, EARLY_STOP): {_pts(gap)}"
    return _verdict(5, claim, judge(gap), stat, gap, to_decide(gap, 0.0, gap.seeds, "seeds per variant"))


def verdicts(runs: Runs, fits: list[Eq1Fit]) -> list[dict]:
    """Every finding's verdict, in the paper's order."""
    return [
        slower_fitting(runs),
        unknown_lowers_accuracy(fits, "test"),
        unknown_lowers_accuracy(fits, "test_ood"),
        known_subset(runs),
        *easy_sets(runs),
        idk_helps(runs),
    ]
