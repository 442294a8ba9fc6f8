"""The report's findings: sentences computed from the numbers, never written by hand."""

from __future__ import annotations

import math
from collections.abc import Sequence

from slick_hf.report.analysis import (
    FIT_LABEL,
    SPLIT_LABEL,
    SPLITS,
    Eq1Fit,
    dynamics_rows,
    fmt,
    idk_rows,
    known_vs_d,
    pct_label,
)
from slick_hf.report.paper import PAPER_EQ1
from slick_hf.runs import POINT_LABEL, STOPPING_POINTS, Runs
from slick_hf.variants.spec import parse_variant_name


def trend_sentence(subject: str, pairs: Sequence[tuple[float, float]]) -> str | None:
    """'<subject> falls from X% at 0% Unknown to Y% at 100% Unknown (...)', or None without two points."""
    pairs = sorted(pairs)
    if len(pairs) < 2:
        return None
    (x0, y0), (x1, y1) = pairs[0], pairs[-1]
    ys = [y for _, y in pairs]
    listing = "(" + ", ".join(f"{pct_label(x)}: {y:.1f}" for x, y in pairs) + ")"
    if max(ys) - min(ys) < 0.05:
        return f"{subject} is {y0:.1f}% at every Unknown ratio measured {listing}."
    if abs(y1 - y0) < 0.05:
        return (
            f"{subject} is {y0:.1f}% at both {pct_label(x0)} and {pct_label(x1)} Unknown, "
            f"and differs in between {listing}."
        )
    direction = "falls" if y1 < y0 else "rises"
    verb = f"{direction} from {y0:.1f}% at {pct_label(x0)} Unknown to {y1:.1f}% at {pct_label(x1)} Unknown"
    steps = [b - a for a, b in zip(ys, ys[1:], strict=False)]
    if len(pairs) > 2:
        if all(s <= 0 for s in steps) and y1 < y0:
            verb += f", never rising in between {listing}"
        elif all(s >= 0 for s in steps) and y1 > y0:
            verb += f", never falling in between {listing}"
        else:
            verb += f" but not monotonically {listing}"
    return f"{subject} {verb}."


def _ci_sentence(fit, term: str, label: str) -> str:
    t = fit.term(term)
    sign = "negative" if t["coef"] < 0 else "positive" if t["coef"] > 0 else "zero"
    if t["ci"][0] is None:
        return f"{label} = {t['coef']:.1f} ({sign}; no confidence interval: too few points)"
    excl = fit.ci_excludes_zero(term)
    ci = f"{int(round(100 * fit.level))}% CI [{t['ci'][0]:.1f}, {t['ci'][1]:.1f}]"
    return f"{label} = {t['coef']:.1f} ({ci}): {sign}, and the interval {'excludes' if excl else 'includes'} 0"


def findings(runs: Runs, fits: list[Eq1Fit]) -> list[str]:
    """The report's findings, each sentence computed from the runs' numbers."""
    out = []
    for split in SPLITS:
        for p in STOPPING_POINTS:
            pairs = [(r.ratio, r.metric(p, split)) for r in runs.by_kind("ratio") if r.metric(p, split) is not None]
            s = trend_sentence(f"{SPLIT_LABEL[split].capitalize()} accuracy at {POINT_LABEL[p]}", pairs)
            if s:
                out.append(s)
        gaps = [
            (r.ratio, r.metric("convergence", split) - r.metric("early_stop", split))
            for r in runs.by_kind("ratio")
            if r.metric("convergence", split) is not None and r.metric("early_stop", split) is not None
        ]
        if gaps:
            below = [x for x, g in gaps if g < -0.05]
            above = [x for x, g in gaps if g > 0.05]
            worst = min(gaps, key=lambda t: t[1])
            s = (
                f"On the {SPLIT_LABEL[split]}, CONVERGENCE is below EARLY_STOP for {len(below)} of {len(gaps)} "
                f"Unknown ratios of D, above for {len(above)}, level for {len(gaps) - len(below) - len(above)}"
            )
            if below:
                s += f"; the largest drop is {-worst[1]:.1f} points, at {pct_label(worst[0])} Unknown"
            out.append(s + ".")
    for split in ("test",):
        rows = [r for r in known_vs_d(runs, split) if not r["same_run"] and r["known_convergence"] is not None]
        for p in STOPPING_POINTS:
            diffs = [(r["ratio"], r[f"known_{p}"] - r[f"d_{p}"]) for r in rows if r[f"d_{p}"] is not None]
            if not diffs:
                continue
            better = [x for x, d in diffs if d > 0.05]
            worse = [x for x, d in diffs if d < -0.05]
            mean = sum(d for _, d in diffs) / len(diffs)
            out.append(
                f"At {POINT_LABEL[p]} on the {SPLIT_LABEL[split]}, D_Known (D without its Unknown examples, so "
                f"fewer rows) is more accurate than D at {len(better)} of {len(diffs)} Unknown ratios, less "
                f"accurate at {len(worse)} (mean difference {mean:+.1f} points)."
            )
    for f in fits:
        if f.fit is None:
            out.append(f"Equation 1 on {f.description}: not fitted ({len(f.points)} points; 3 or more needed).")
            continue
        r2 = "–" if f.fit.r2 is None else f"{f.fit.r2:.2f}"
        paper = PAPER_EQ1.get(f.label)
        ref = f" (paper: b_kn {paper['b_kn']}, b_unk {paper['b_unk']}, R^2 {paper['r2']})" if paper else ""
        out.append(
            f"Equation 1 on {f.description}, {f.fit.n} points: "
            f"{_ci_sentence(f.fit, 'b_unk', 'b_unk')}; {_ci_sentence(f.fit, 'b_kn', 'b_kn')}; R^2 = {r2}{ref}."
        )
        t = f.fit.term("b_unk")
        if t["ci"][0] is not None:
            if t["coef"] < 0 and f.fit.ci_excludes_zero("b_unk"):
                out.append(
                    f"So on {FIT_LABEL[f.label]} accuracy, fitting more Unknown examples goes with lower accuracy, "
                    "as in the paper (the interval is optimistic: see the note under the Equation 1 table)."
                )
            else:
                out.append(
                    f"So these {FIT_LABEL[f.label]} points do not show the paper's finding that fitting "
                    "Unknown examples lowers accuracy (b_unk is not negative with an interval excluding 0)."
                )
    both = [
        r
        for r in dynamics_rows(runs)
        if r["known_fit_es"] is not None
        and r["unknown_fit_es"] is not None
        and parse_variant_name(r["run"])[0] != "idk"
    ]
    if both:
        slower = [r for r in both if r["unknown_fit_es"] < r["known_fit_es"]]
        conv = [r for r in both if r["unknown_fit_conv"] is not None]
        mean_es_k = sum(r["known_fit_es"] for r in both) / len(both)
        mean_es_u = sum(r["unknown_fit_es"] for r in both) / len(both)
        s = (
            f"At the EARLY_STOP epoch, the share of Unknown train examples fitted is below that of Known ones in "
            f"{len(slower)} of {len(both)} runs with both kinds (means {mean_es_u:.0f}% vs {mean_es_k:.0f}%)"
        )
        if conv:
            mu = sum(r["unknown_fit_conv"] for r in conv) / len(conv)
            mk = sum(r["known_fit_conv"] for r in conv) / len(conv)
            s += f"; at CONVERGENCE the means are {mu:.0f}% Unknown vs {mk:.0f}% Known"
        out.append(s + ".")
    for split in SPLITS:
        rows = {(r["run"], r["point"]): r for r in idk_rows(runs, split)}
        for p in STOPPING_POINTS:
            d, idk = rows.get(("D_unk0.50", p)), rows.get(("D_IDK_unk0.50", p))
            if not d or not idk or idk["answered"] is None:
                continue
            acc_i, acc_d = idk["accuracy_answered"], d["accuracy_answered"]
            s = (
                f"At {POINT_LABEL[p]} on the {SPLIT_LABEL[split]}, D_IDK answers {idk['answered']:.1f}% of questions"
                f" (D: {fmt(d['answered'])}%), with {fmt(acc_i)}% accuracy on those answered (D: {fmt(acc_d)}%)"
            )
            if acc_i is not None and acc_d is not None:
                diff = acc_i - acc_d
                s += f": {'higher' if diff > 0 else 'lower'} than D's by {abs(diff):.1f} points" if diff else ": as D's"
            if idk["paper"]:
                s += f" (paper: {idk['paper'][1]}% answered, {idk['paper'][0]}% accuracy on answered)"
            out.append(s + ".")
    return out


def noise_sentence(runs: Runs) -> str | None:
    """How large one question and one binomial standard error are, per test split, at the runs' mean accuracy."""
    parts = []
    for split in SPLITS:
        accs = [r.metric(p, split) for r in runs.runs.values() if r.complete for p in STOPPING_POINTS]
        accs = [a for a in accs if a is not None]
        n = runs.question_count(split)
        if not accs or not n:
            continue
        p = sum(accs) / len(accs) / 100
        se = 100 * math.sqrt(max(p * (1 - p), 1 / n) / n)  # floor: one question's worth of spread
        parts.append(
            f"the {SPLIT_LABEL[split]} has {n} questions, so one question is {100 / n:.1f} points and the "
            f"binomial standard error of one accuracy near the runs' mean ({100 * p:.0f}%) is about {se:.1f} points"
        )
    if not parts:
        return None
    return "Scale of noise: " + "; ".join(parts) + ". Differences smaller than that are not evidence."
