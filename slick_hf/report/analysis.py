"""The numbers of the paper's analyses over a folder of runs: tables' rows, Equation 1, IDK, dynamics."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from slick_hf.core.slick import CATEGORIES
from slick_hf.report.paper import PAPER_ALIASES, PAPER_IDK, paper_table_row
from slick_hf.report.stats import Estimate, difference, fit_equation1, seed_mean
from slick_hf.runs import POINT_LABEL, STOPPING_POINTS, Run, RunGroup, Runs

SPLITS = ("test", "test_ood")
SPLIT_LABEL = {"test": "in-distribution test", "test_ood": "out-of-distribution test"}
FIT_LABEL = {"test": "in-distribution test", "test_ood": "out-of-distribution test", "dev": "dev"}
SINGLE = tuple(f"D_{c}" for c in CATEGORIES) + ("D_Natural",)


def fmt(v: float | None, digits: int = 1) -> str:
    """A number for a table cell; a dash for a missing one."""
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def pct_label(ratio: float | None) -> str:
    """A ratio as a percent label, e.g. 50%."""
    return "–" if ratio is None else f"{100 * ratio:g}%"


def trials(metrics: dict, key: str) -> int:
    """How many questions a metric of `metrics` is a share of (e.g. the answered ones for accuracy on answered)."""
    for prefix, count in (("exact_match_answered", "answered"), ("exact_match", None), ("answered", None)):
        if key.startswith(prefix):
            suffix = key[len(prefix) :]
            n = metrics.get(f"count{suffix}") or 0
            return round((metrics.get(f"{count}{suffix}") or 0) * n) if count else n
    raise KeyError(key)


def estimate(group: RunGroup | None, point: str, split: str, key: str = "exact_match") -> Estimate | None:
    """A variant's metric over its seeds with its uncertainty (fractions; `stats.seed_mean`)."""
    if group is None:
        return None
    values = group.values(point, split, key)
    if values is None or split not in group.results.get(point, {}):
        return None
    return seed_mean(values, trials(group.results[point][split], key))


def fmt_estimate(e: Estimate | None) -> str:
    """A percentage with its 95% interval, e.g. `41.2 [37.3, 45.1]`; a dash when there is none."""
    if e is None:
        return "–"
    return f"{100 * e.mean:.1f} [{100 * e.low:.1f}, {100 * e.high:.1f}]"


def _as_dict(e: Estimate | None) -> dict | None:
    return e.as_dict() if e is not None else None


def evaluated_points(runs: Runs, names: Sequence[str], split: str) -> Iterator[tuple[str, RunGroup, str]]:
    """(name, variant's runs, stopping point) for each named variant, at each point evaluated on `split`."""
    for name in names:
        run = runs.get(name)
        if run is None:
            continue
        for p in STOPPING_POINTS:
            if split in run.results[p]:
                yield name, run, p


def category_rows(runs: Runs, split: str, with_paper: bool) -> tuple[list[str], list[list[str]]]:
    """Per-category accuracy (mean over seeds [95% interval]) of every variant at both stopping points."""
    ordered = [*SINGLE, *(r.name for k in ("ratio", "known", "idk", "other") for r in runs.by_kind(k))]
    first = next(evaluated_points(runs, list(runs.groups), split), None)
    if first is None:
        return [], []
    _, run, p = first
    counts = {c: run.results[p][split].get(f"count_{c}") for c in CATEGORIES} | {"": run.results[p][split].get("count")}
    header = ["train set", "seeds", "stopping point", f"Full (n={counts['']})"]
    header += [f"{c} (n={counts[c]})" for c in CATEGORIES]
    if with_paper:
        header.append("paper: Full / HK / MK / WK / Unk")
    rows = []
    for name, run, p in evaluated_points(runs, ordered, split):
        keys = ["exact_match", *(f"exact_match_{c}" for c in CATEGORIES)]
        label = f"{name} (= {PAPER_ALIASES[name]})" if name in PAPER_ALIASES else name
        row = [label, len(run.runs), POINT_LABEL[p], *(fmt_estimate(estimate(run, p, split, k)) for k in keys)]
        if with_paper:
            ref = paper_table_row(name, p)
            row.append(" / ".join(f"{v:g}" for v in ref) if ref else "")
        rows.append(row)
    return header, rows


def known_vs_d(runs: Runs, split: str) -> list[dict]:
    """Per Unknown ratio: accuracy of D and of D_Known at both stopping points, and their difference."""
    out = []
    for d in runs.by_kind("ratio"):
        if d.ratio >= 1.0:
            continue
        known = d if d.ratio == 0 else runs.get(f"D_Known_unk{d.ratio:.2f}")
        row = {"ratio": d.ratio, "known_size": known.size if known else None, "same_run": d.ratio == 0}
        for p in STOPPING_POINTS:
            row[f"d_{p}"] = d.metric(p, split)
            row[f"known_{p}"] = known.metric(p, split) if known else None
            a, b = estimate(known, p, split), estimate(d, p, split)
            row[f"known_estimate_{p}"] = _as_dict(a)
            row[f"gap_{p}"] = difference(a, b).as_dict() if a and b and not row["same_run"] else None
        out.append(row)
    return out


@dataclass
class Eq1Fit:
    """Equation 1 fitted on one kind of points (`label`: test, test_ood or dev)."""

    label: str
    description: str
    points: list[dict]
    fit: object | None  # OLSFit
    excluded: list[str]


def eq1_points(runs: Runs, source: str) -> tuple[list[dict], list[str]]:
    """The (run, epoch) points of Equation 1.

    source "test"/"test_ood": test accuracy at EARLY_STOP and CONVERGENCE, with the fitted Known /
    Unknown counts of those epochs. source "dev": dev accuracy at every epoch. D_IDK runs are left
    out (their "fitted Unknown" examples are learned abstentions, not new facts). Fractions are
    over the sweep's |D| (D_Known runs have fewer rows, but fitted counts stay on one scale).
    """
    size = runs.size
    points, excluded = [], []
    for run in sorted(runs.runs.values(), key=lambda r: r.name):
        if run.kind == "idk":
            excluded.append(f"{run.name} (IDK targets)")
            continue
        if not run.dynamics or not size:
            excluded.append(f"{run.name} (no training dynamics)")
            continue
        if source == "dev":
            rows = [(r, 100.0 * r["dev_exact_match"], f"epoch {r['epoch']:g}") for r in run.dynamics]
        else:
            if not run.complete:
                excluded.append(f"{run.name} (unfinished)")
                continue
            rows = []
            for p in STOPPING_POINTS:
                acc, row = run.metric(p, source), run.dynamics_at(p)
                if acc is not None and row is not None:
                    rows.append((row, acc, POINT_LABEL[p]))
        for row, acc, where in rows:
            if row.get("n_known_fit") is None or row.get("n_unknown_fit") is None or acc is None:
                continue
            points.append(
                {
                    "run": run.name,
                    "cluster": run.name,
                    "at": where,
                    "epoch": float(row["epoch"]),
                    "accuracy": acc,
                    "known_fit": row["n_known_fit"] / size,
                    "unknown_fit": row["n_unknown_fit"] / size,
                }
            )
    return points, excluded


def eq1_fits(runs: Runs) -> list[Eq1Fit]:
    """Equation 1 on in-distribution test, OOD test and dev points."""
    specs = [
        ("test", "in-distribution test accuracy at EARLY_STOP and CONVERGENCE (2 points per run)"),
        ("test_ood", "out-of-distribution test accuracy at EARLY_STOP and CONVERGENCE (2 points per run)"),
        ("dev", "dev accuracy at every epoch (the early-stopping set itself, not held out)"),
    ]
    out = []
    for source, description in specs:
        points, excluded = eq1_points(runs, source)
        fit = None
        if len(points) >= 3:
            fit = fit_equation1(
                [p["accuracy"] for p in points],
                [p["known_fit"] for p in points],
                [p["unknown_fit"] for p in points],
                clusters=[p["cluster"] for p in points],
            )
        out.append(Eq1Fit(source, description, points, fit, excluded))
    return out


def idk_rows(runs: Runs, split: str) -> list[dict]:
    """Answered share and accuracy on answered questions of D and D_IDK at 50 % Unknown."""
    return [
        {
            "run": name,
            "point": p,
            "answered": run.metric(p, split, "answered"),
            "accuracy_answered": run.metric(p, split, "exact_match_answered"),
            "accuracy": run.metric(p, split),
            "accuracy_answered_estimate": _as_dict(estimate(run, p, split, "exact_match_answered")),
            "accuracy_estimate": _as_dict(estimate(run, p, split)),
            "paper": PAPER_IDK[name][p] if split == "test" else None,
        }
        for name, run, p in evaluated_points(runs, ("D_unk0.50", "D_IDK_unk0.50"), split)
    ]


def dynamics_rows(runs: Runs) -> list[dict]:
    """Per run: EARLY_STOP and last epochs, best dev accuracy, Known/Unknown fit at both points."""
    out = []
    for run in sorted(runs.runs.values(), key=run_order):
        if not run.dynamics:
            continue
        es, conv = run.dynamics_at("early_stop"), run.dynamics_at("convergence")

        def share(row, key):
            return None if row is None or row.get(key) is None else 100.0 * row[key]

        out.append(
            {
                "run": run.name,
                "es_epoch": run.es_epoch,
                "last_epoch": run.last_epoch,
                "best_dev": max(100.0 * r["dev_exact_match"] for r in run.dynamics),
                "known_fit_es": share(es, "train_fit_known"),
                "unknown_fit_es": share(es, "train_fit_unknown"),
                "known_fit_conv": share(conv, "train_fit_known"),
                "unknown_fit_conv": share(conv, "train_fit_unknown"),
            }
        )
    return out


def run_order(run: Run) -> tuple:
    """Sort key of runs in tables and plots: by kind, then Unknown ratio, then name."""
    kinds = ["ratio", "known", *CATEGORIES, "natural", "idk", "other"]
    return kinds.index(run.kind) if run.kind in kinds else len(kinds), run.ratio or 0.0, run.name
