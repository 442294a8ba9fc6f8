"""`slick-hf report RUNS_DIR`: the paper's analyses over a folder of runs, as markdown, JSON and PNG.

Reads every run folder under RUNS_DIR (as written by `run_recipe`: results.json,
training_dynamics.jsonl, train_complete.json, run.json, variant/summary.json) and writes:

- README.md: findings, each sentence computed from the numbers, then the tables and the plots;
- tables.md: the same tables alone; report.json: every number; equation1_points.csv: the points
  Equation 1 was fitted on;
- accuracy_vs_unknown.png, train_fit.png, dev_accuracy.png, equation1.png.

A run that is missing or unfinished is named in the README and left out of what needs it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .cards import markdown_table
from .errors import SlickError
from .hub import atomic_write_text
from .regression import fit_equation1
from .slick import CATEGORIES
from .sweep import SWEEP_FILE, plan_names, sweep_plan

logger = logging.getLogger(__name__)
POINTS = ("early_stop", "convergence")
POINT_LABEL = {"early_stop": "EARLY_STOP", "convergence": "CONVERGENCE"}
SPLITS = ("test", "test_ood")
SPLIT_LABEL = {"test": "in-distribution test", "test_ood": "out-of-distribution test"}
FIT_LABEL = {"test": "in-distribution test", "test_ood": "out-of-distribution test", "dev": "dev"}
SINGLE = tuple(f"D_{c}" for c in CATEGORIES) + ("D_Natural",)

# SPEC.md, "Reference numbers": in-distribution test accuracy %, Full / HK / MK / WK / Unk.
PAPER_TABLE = {
    "D_HighlyKnown": {"early_stop": (40.5, 98.7, 60.1, 9.0, 0.6), "convergence": (40.0, 98.4, 58.8, 8.5, 0.7)},
    "D_MaybeKnown": {"early_stop": (43.6, 98.4, 69.9, 12.1, 1.0), "convergence": (43.2, 97.5, 68.2, 12.9, 1.3)},
    "D_WeaklyKnown": {"early_stop": (39.2, 95.0, 59.2, 8.6, 0.4), "convergence": (35.4, 73.5, 55.8, 17.2, 2.2)},
    "D_Unknown": {"early_stop": (37.5, 95.6, 52.9, 6.5, 0.6), "convergence": (25.8, 55.8, 36.6, 12.2, 3.2)},
    "D_Natural": {"early_stop": (43.5, 98.0, 67.6, 14.1, 1.8), "convergence": (41.8, 95.5, 61.7, 14.8, 2.5)},
}
PAPER_EQ1 = {
    "test": {"b0": 36.9, "b_kn": 7.3, "b_unk": -8.3, "r2": 0.86},
    "test_ood": {"b0": 36.2, "b_kn": 3.2, "b_unk": -3.0, "r2": 0.95},
}
# (accuracy on answered %, % answered), 50 % Unknown.
PAPER_IDK = {
    "D_unk0.50": {"early_stop": (43.0, 100.0), "convergence": (38.8, 100.0)},
    "D_IDK_unk0.50": {"early_stop": (61.8, 58.7), "convergence": (61.8, 55.6)},
}
_NAME = re.compile(r"^D_(?:(?P<kind>Known|IDK)_)?unk(?P<ratio>\d+(?:\.\d+)?)$")


# ---------------------------------------------------------------------------------------------
# Reading runs.


def parse_run_name(name: str) -> tuple[str, float | None]:
    """(kind, unknown ratio) of a run folder name: ratio/known/idk with a ratio, a category, natural."""
    m = _NAME.match(name)
    if m:
        kind = {"Known": "known", "IDK": "idk", None: "ratio"}[m["kind"]]
        return kind, float(m["ratio"])
    if name == "D_Natural":
        return "natural", None
    if name.startswith("D_") and name[2:] in CATEGORIES:
        return name[2:], None
    return "other", None


@dataclass
class Run:
    name: str
    path: Path
    kind: str
    ratio: float | None
    results: dict = field(default_factory=dict)
    dynamics: list[dict] = field(default_factory=list)
    train: dict = field(default_factory=dict)  # train_complete.json without log_history
    summary: dict = field(default_factory=dict)  # variant/summary.json
    info: dict = field(default_factory=dict)  # run.json
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(p in self.results and "test" in self.results[p] for p in POINTS)

    def metric(self, point: str, split: str, key: str = "exact_match") -> float | None:
        """A metric in percent (fractions are scaled; counts are not), or None."""
        v = self.results.get(point, {}).get(split, {}).get(key)
        if v is None:
            return None
        return v if key.startswith("count") else 100.0 * v

    @property
    def size(self) -> int | None:
        if self.summary.get("size") is not None:
            return self.summary["size"]
        return self.dynamics[0].get("train_size") if self.dynamics else None

    @property
    def es_epoch(self) -> float | None:
        """The EARLY_STOP epoch: train_complete.json's best_epoch, else the first best dev epoch."""
        if self.train.get("best_epoch") is not None:
            return float(self.train["best_epoch"])
        rows = [r for r in self.dynamics if r.get("dev_exact_match") is not None]
        if not rows:
            return None
        best = max(r["dev_exact_match"] for r in rows)
        return float(next(r["epoch"] for r in rows if r["dev_exact_match"] == best))

    @property
    def last_epoch(self) -> float | None:
        return max((float(r["epoch"]) for r in self.dynamics), default=None)

    def dynamics_at(self, point: str) -> dict | None:
        """The training-dynamics row of the EARLY_STOP epoch or of the last (CONVERGENCE) epoch."""
        if not self.dynamics:
            return None
        epoch = self.es_epoch if point == "early_stop" else self.last_epoch
        if epoch is None:
            return None
        row = min(self.dynamics, key=lambda r: abs(float(r["epoch"]) - epoch))
        return row if abs(float(row["epoch"]) - epoch) <= 0.5 else None


def _read_json(path: Path, problems: list[str]):
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        problems.append(f"unreadable {path.name}: {err}")
        return None


def read_run(path: Path) -> Run:
    kind, ratio = parse_run_name(path.name)
    run = Run(path.name, path, kind, ratio)
    run.results = _read_json(path / "results.json", run.problems) or {}
    train = _read_json(path / "train_complete.json", run.problems) or {}
    run.train = {k: v for k, v in train.items() if k != "log_history"}
    run.summary = _read_json(path / "variant" / "summary.json", run.problems) or {}
    run.info = _read_json(path / "run.json", run.problems) or {}
    if not run.summary and run.info.get("variant_summary"):
        run.summary = run.info["variant_summary"]
    dyn = path / "training_dynamics.jsonl"
    if dyn.exists():
        for i, line in enumerate(dyn.read_text().splitlines(), 1):
            if line.strip():
                try:
                    run.dynamics.append(json.loads(line))
                except json.JSONDecodeError:
                    run.problems.append(f"training_dynamics.jsonl line {i} is not JSON")
        run.dynamics.sort(key=lambda r: float(r.get("epoch", 0)))
    if not run.results:
        run.problems.append("no results.json (not evaluated yet)")
    elif not run.complete:
        have = ", ".join(f"{p}/{s}" for p, splits in run.results.items() for s in splits)
        run.problems.append(f"results.json incomplete (has {have or 'nothing'})")
    if not run.dynamics:
        run.problems.append("no training_dynamics.jsonl")
    return run


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / f).exists() for f in ("results.json", "run.json", "training_dynamics.jsonl", "variant")
    )


@dataclass
class Runs:
    folder: Path
    runs: dict[str, Run]
    sweep: dict
    expected: list[str]

    def get(self, name: str, complete: bool = True) -> Run | None:
        run = self.runs.get(name)
        if run is None or (complete and not run.complete):
            return None
        return run

    def by_kind(self, kind: str) -> list[Run]:
        return sorted((r for r in self.runs.values() if r.kind == kind and r.complete), key=lambda r: r.ratio or 0.0)

    @property
    def size(self) -> int | None:
        """The sweep's |D|: from sweep.json, else the largest train set among the runs."""
        if self.sweep.get("config", {}).get("train_size"):
            return int(self.sweep["config"]["train_size"])
        sizes = [r.size for r in self.runs.values() if r.size]
        return max(sizes) if sizes else None

    @property
    def infeasible(self) -> dict[str, str]:
        return dict(self.sweep.get("infeasible", {}))

    @property
    def missing(self) -> list[str]:
        """Expected runs (the sweep plan, less infeasible ones) that are absent."""
        return [n for n in self.expected if n not in self.runs and n not in self.infeasible]

    @property
    def incomplete(self) -> dict[str, list[str]]:
        return {n: r.problems for n, r in self.runs.items() if not r.complete}


def load_runs(folder: Path) -> Runs:
    folder = Path(folder)
    if not folder.is_dir():
        raise SlickError(f"no such runs folder: {folder}")
    runs = {p.name: read_run(p) for p in sorted(folder.iterdir()) if is_run_dir(p)}
    if not runs:
        subs = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("sweep-"))
        hint = f"; sweep folders here: {', '.join(subs)}" if subs else ""
        raise SlickError(f"no run folders (with results.json or run.json) in {folder}{hint}")
    sweep = {}
    if (folder / SWEEP_FILE).exists():
        try:
            sweep = json.loads((folder / SWEEP_FILE).read_text())
        except json.JSONDecodeError:
            logger.warning("unreadable %s", folder / SWEEP_FILE)
    expected = list(sweep.get("plan") or plan_names(sweep_plan()))
    return Runs(folder, runs, sweep, expected)


# ---------------------------------------------------------------------------------------------
# Numbers.


def _fmt(v: float | None, digits: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _pct_label(ratio: float | None) -> str:
    return "–" if ratio is None else f"{100 * ratio:g}%"


def evaluated_points(runs: Runs, names: Sequence[str], split: str) -> Iterator[tuple[str, Run, str]]:
    """(name, run, stopping point) for each named complete run, at each point evaluated on `split`."""
    for name in names:
        run = runs.get(name)
        if run is None:
            continue
        for p in POINTS:
            if split in run.results[p]:
                yield name, run, p


def category_rows(runs: Runs, split: str, with_paper: bool) -> tuple[list[str], list[list[str]]]:
    """Per-category accuracy of every complete run at both stopping points."""
    ordered = [*SINGLE, *(r.name for k in ("ratio", "known", "idk", "other") for r in runs.by_kind(k))]
    first = next(evaluated_points(runs, list(runs.runs), split), None)
    if first is None:
        return [], []
    _, run, p = first
    counts = {c: run.results[p][split].get(f"count_{c}") for c in CATEGORIES} | {"": run.results[p][split].get("count")}
    header = ["train set", "stopping point", f"Full (n={counts['']})"]
    header += [f"{c} (n={counts[c]})" for c in CATEGORIES]
    if with_paper:
        header.append("paper: Full / HK / MK / WK / Unk")
    rows = []
    for name, run, p in evaluated_points(runs, ordered, split):
        cells = [_fmt(run.metric(p, split))] + [_fmt(run.metric(p, split, f"exact_match_{c}")) for c in CATEGORIES]
        row = [name, POINT_LABEL[p], *cells]
        if with_paper:
            ref = PAPER_TABLE.get(name, {}).get(p)
            row.append(" / ".join(f"{v:g}" for v in ref) if ref else "")
        rows.append(row)
    return header, rows


def known_vs_d(runs: Runs, split: str) -> list[dict]:
    """Per Unknown ratio: accuracy of D and of D_Known at both stopping points."""
    out = []
    for d in runs.by_kind("ratio"):
        if d.ratio >= 1.0:
            continue
        known = d if d.ratio == 0 else runs.get(f"D_Known_unk{d.ratio:.2f}")
        row = {"ratio": d.ratio, "known_size": known.size if known else None, "same_run": d.ratio == 0}
        for p in POINTS:
            row[f"d_{p}"] = d.metric(p, split)
            row[f"known_{p}"] = known.metric(p, split) if known else None
        out.append(row)
    return out


@dataclass
class Eq1Fit:
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
            for p in POINTS:
                acc, row = run.metric(p, source), run.dynamics_at(p)
                if acc is not None and row is not None:
                    rows.append((row, acc, POINT_LABEL[p]))
        for row, acc, where in rows:
            if row.get("n_known_fit") is None or row.get("n_unknown_fit") is None or acc is None:
                continue
            points.append(
                {
                    "run": run.name,
                    "at": where,
                    "epoch": float(row["epoch"]),
                    "accuracy": acc,
                    "known_fit": row["n_known_fit"] / size,
                    "unknown_fit": row["n_unknown_fit"] / size,
                }
            )
    return points, excluded


def eq1_fits(runs: Runs) -> list[Eq1Fit]:
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
                [p["accuracy"] for p in points], [p["known_fit"] for p in points], [p["unknown_fit"] for p in points]
            )
        out.append(Eq1Fit(source, description, points, fit, excluded))
    return out


def idk_rows(runs: Runs, split: str) -> list[dict]:
    return [
        {
            "run": name,
            "point": p,
            "answered": run.metric(p, split, "answered"),
            "accuracy_answered": run.metric(p, split, "exact_match_answered"),
            "accuracy": run.metric(p, split),
            "paper": PAPER_IDK[name][p] if split == "test" else None,
        }
        for name, run, p in evaluated_points(runs, ("D_unk0.50", "D_IDK_unk0.50"), split)
    ]


def dynamics_rows(runs: Runs) -> list[dict]:
    out = []
    for run in sorted(runs.runs.values(), key=_run_order):
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


def _run_order(run: Run) -> tuple:
    kinds = ["ratio", "known", *CATEGORIES, "natural", "idk", "other"]
    return kinds.index(run.kind) if run.kind in kinds else len(kinds), run.ratio or 0.0, run.name


# ---------------------------------------------------------------------------------------------
# Sentences from numbers.


def _trend_sentence(subject: str, pairs: Sequence[tuple[float, float]]) -> str | None:
    """'<subject> falls from X% at 0% Unknown to Y% at 100% Unknown (...)', or None without two points."""
    pairs = sorted(pairs)
    if len(pairs) < 2:
        return None
    (x0, y0), (x1, y1) = pairs[0], pairs[-1]
    ys = [y for _, y in pairs]
    listing = "(" + ", ".join(f"{_pct_label(x)}: {y:.1f}" for x, y in pairs) + ")"
    if max(ys) - min(ys) < 0.05:
        return f"{subject} is {y0:.1f}% at every Unknown ratio measured {listing}."
    if abs(y1 - y0) < 0.05:
        return (
            f"{subject} is {y0:.1f}% at both {_pct_label(x0)} and {_pct_label(x1)} Unknown, "
            f"and differs in between {listing}."
        )
    direction = "falls" if y1 < y0 else "rises"
    verb = f"{direction} from {y0:.1f}% at {_pct_label(x0)} Unknown to {y1:.1f}% at {_pct_label(x1)} Unknown"
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
    out = []
    for split in SPLITS:
        for p in POINTS:
            pairs = [(r.ratio, r.metric(p, split)) for r in runs.by_kind("ratio") if r.metric(p, split) is not None]
            s = _trend_sentence(f"{SPLIT_LABEL[split].capitalize()} accuracy at {POINT_LABEL[p]}", pairs)
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
                s += f"; the largest drop is {-worst[1]:.1f} points, at {_pct_label(worst[0])} Unknown"
            out.append(s + ".")
    for split in ("test",):
        rows = [r for r in known_vs_d(runs, split) if not r["same_run"] and r["known_convergence"] is not None]
        for p in POINTS:
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
        if r["known_fit_es"] is not None and r["unknown_fit_es"] is not None and parse_run_name(r["run"])[0] != "idk"
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
        for p in POINTS:
            d, idk = rows.get(("D_unk0.50", p)), rows.get(("D_IDK_unk0.50", p))
            if not d or not idk or idk["answered"] is None:
                continue
            acc_i, acc_d = idk["accuracy_answered"], d["accuracy_answered"]
            s = (
                f"At {POINT_LABEL[p]} on the {SPLIT_LABEL[split]}, D_IDK answers {idk['answered']:.1f}% of questions"
                f" (D: {_fmt(d['answered'])}%), with {_fmt(acc_i)}% accuracy on those answered (D: {_fmt(acc_d)}%)"
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
        accs = [r.metric(p, split) for r in runs.runs.values() if r.complete for p in POINTS]
        accs = [a for a in accs if a is not None]
        n = next((r.metric("early_stop", split, "count") for r in runs.runs.values() if r.complete), None)
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


# ---------------------------------------------------------------------------------------------
# Markdown.


def _ci_cell(fit, term: str) -> str:
    t = fit.term(term)
    if t["ci"][0] is None:
        return f"{t['coef']:.1f}"
    return f"{t['coef']:.1f} [{t['ci'][0]:.1f}, {t['ci'][1]:.1f}]"


def tables_markdown(runs: Runs, fits: list[Eq1Fit]) -> str:
    parts = []
    for split in SPLITS:
        header, rows = category_rows(runs, split, with_paper=split == "test")
        if not rows:
            continue
        note = (
            "The paper column is SPEC.md's reference table (PaLM 2-M on EntityQuestions): compare shapes, not levels."
            if split == "test"
            else "The paper gives no per-category OOD numbers for these sets."
        )
        parts += [
            f"### Test accuracy (%) per SliCK category, {SPLIT_LABEL[split]}",
            "",
            markdown_table(header, rows),
            "",
            note,
            "",
        ]
    for split in SPLITS:
        rows = known_vs_d(runs, split)
        if not rows:
            continue
        body = [
            [
                _pct_label(r["ratio"]) + (" (D_Known = D)" if r["same_run"] else ""),
                r["known_size"] if r["known_size"] is not None else "–",
                _fmt(r["d_early_stop"]),
                _fmt(r["known_early_stop"]),
                _fmt(r["d_convergence"]),
                _fmt(r["known_convergence"]),
            ]
            for r in rows
        ]
        parts += [
            f"### D versus D_Known, {SPLIT_LABEL[split]} accuracy (%)",
            "",
            markdown_table(
                [
                    "% Unknown in D",
                    "|D_Known|",
                    "D EARLY_STOP",
                    "D_Known EARLY_STOP",
                    "D CONVERGENCE",
                    "D_Known CONVERGENCE",
                ],
                body,
            ),
            "",
        ]
    eq_rows = []
    for f in fits:
        paper = PAPER_EQ1.get(f.label)
        ref = f"{paper['b0']} / {paper['b_kn']} / {paper['b_unk']} / {paper['r2']}" if paper else ""
        if f.fit is None:
            eq_rows.append([f.description, len(f.points), "–", "–", "–", "–", ref])
            continue
        eq_rows.append(
            [
                f.description,
                f.fit.n,
                _ci_cell(f.fit, "b0"),
                _ci_cell(f.fit, "b_kn"),
                _ci_cell(f.fit, "b_unk"),
                _fmt(f.fit.r2, 2),
                ref,
            ]
        )
    excluded = sorted({e for f in fits for e in f.excluded})
    parts += [
        "### Equation 1: Accuracy = b0 + b_kn N_kn/|D| + b_unk N_unk/|D|",
        "",
        markdown_table(
            [
                "accuracy fitted (%)",
                "points",
                "b0 [95% CI]",
                "b_kn [95% CI]",
                "b_unk [95% CI]",
                "R^2",
                "paper b0 / b_kn / b_unk / R^2",
            ],
            eq_rows,
        ),
        "",
        f"OLS over (run, epoch) points; N_kn, N_unk = Known / Unknown train examples the model answers correctly "
        f"at that epoch (training_dynamics.jsonl), over the sweep's |D| = {runs.size}. Intervals: "
        "s^2 (X^T X)^-1 standard errors and Student t quantiles. Our runs record test accuracy only at "
        "EARLY_STOP and CONVERGENCE, so the test fits have 2 points per run; the dev fit uses every epoch "
        "but dev also chose EARLY_STOP. Points of one run, and all points of one test set, are not "
        "independent, so the intervals are narrower than they should be: read them as a lower bound on the "
        "uncertainty. " + (f"Left out: {', '.join(excluded)}." if excluded else ""),
        "",
    ]
    for split in SPLITS:
        rows = idk_rows(runs, split)
        if not rows:
            continue
        body = [
            [
                r["run"],
                POINT_LABEL[r["point"]],
                _fmt(r["answered"]),
                _fmt(r["accuracy_answered"]),
                _fmt(r["accuracy"]),
                f"{r['paper'][1]:g} / {r['paper'][0]:g}" if r["paper"] else "",
            ]
            for r in rows
        ]
        parts += [
            f'### "I don\'t know": D_IDK versus D at 50% Unknown, {SPLIT_LABEL[split]}',
            "",
            markdown_table(
                [
                    "train set",
                    "stopping point",
                    "% answered",
                    "accuracy on answered (%)",
                    "accuracy (%)",
                    "paper: % answered / accuracy on answered",
                ],
                body,
            ),
            "",
        ]
    dyn = dynamics_rows(runs)
    if dyn:
        body = [
            [
                r["run"],
                _fmt(r["es_epoch"], 0),
                _fmt(r["last_epoch"], 0),
                _fmt(r["best_dev"]),
                f"{_fmt(r['known_fit_es'], 0)} / {_fmt(r['unknown_fit_es'], 0)}",
                f"{_fmt(r['known_fit_conv'], 0)} / {_fmt(r['unknown_fit_conv'], 0)}",
            ]
            for r in dyn
        ]
        parts += [
            "### Training dynamics: share of train examples fitted (%)",
            "",
            markdown_table(
                [
                    "train set",
                    "EARLY_STOP epoch",
                    "last epoch",
                    "best dev accuracy (%)",
                    "Known / Unknown fitted at EARLY_STOP",
                    "at CONVERGENCE",
                ],
                body,
            ),
            "",
            'For D_IDK, a fitted Unknown example is one the model answers "I don\'t know".',
            "",
        ]
    return "\n".join(parts)


def status_lines(runs: Runs) -> list[str]:
    complete = [n for n, r in runs.runs.items() if r.complete]
    cfg = runs.sweep.get("config", {})
    model = cfg.get("model") or next((r.info.get("base_model") for r in runs.runs.values() if r.info), None)
    epochs = cfg.get("epochs") or next((r.last_epoch for r in runs.runs.values() if r.last_epoch), None)
    what = f"{len(complete)} complete run(s) in `{runs.folder}`"
    details = [f"|D| = {runs.size}" if runs.size else None, f"{epochs:g} epochs" if epochs else None]
    details.append(f"base model `{model}`" if model else None)
    out = [what + " (" + ", ".join(d for d in details if d) + ")."]
    if isinstance(cfg.get("train_relations"), list):
        out.append(
            f"D is drawn from the train relations {', '.join(cfg['train_relations'])} only "
            "(`--sweep-relations`); dev and test keep every relation."
        )
    if runs.sweep.get("size_rule"):
        out.append(f"|D| rule: {runs.sweep['size_rule']}.")
    if runs.sweep.get("command"):
        out.append(f"Made by `{runs.sweep['command']}`.")
    timed = {n: r["seconds"] for n, r in runs.sweep.get("runs", {}).items() if r.get("seconds")}
    if timed:
        out.append(
            f"Wall time of the {len(timed)} run(s) trained by the sweep (from sweep.json): "
            f"{sum(timed.values()) / 60:.1f} min in all, {min(timed.values()) / 60:.1f} to "
            f"{max(timed.values()) / 60:.1f} min per run."
        )
    if runs.infeasible:
        out.append(
            "Not run, infeasible on this pool: "
            + "; ".join(f"**{n}** ({reason[:300]})" for n, reason in runs.infeasible.items())
            + "."
        )
    if runs.missing:
        out.append("Missing (planned, no run folder): " + ", ".join(f"**{n}**" for n in runs.missing) + ".")
    if runs.incomplete:
        out.append(
            "Unfinished, left out of the tables: "
            + "; ".join(f"**{n}** ({', '.join(p)})" for n, p in runs.incomplete.items())
            + "."
        )
    return out


PLOTS = {
    "accuracy_vs_unknown.png": "Test accuracy against the share of Unknown examples in D, at EARLY_STOP and "
    "CONVERGENCE; dashed: D_Known (D with those Unknown examples removed).",
    "train_fit.png": "Share of Known and Unknown train examples the model fits, per epoch (the paper's Figure 1 "
    "and 4 shapes); the dotted line marks EARLY_STOP.",
    "dev_accuracy.png": "Dev accuracy per epoch; a dot marks EARLY_STOP.",
    "equation1.png": "Equation 1: fitted against observed accuracy, one point per (run, epoch).",
}


def readme_markdown(runs: Runs, found: list[str], plots: Sequence[str], tables: str) -> str:
    lines = [
        "# SliCK report",
        "",
        "Analyses of Gekhman et al. 2024 (arXiv:2405.05904) over a sweep of fine-tuning sets, written by "
        "`slick-hf report`. Every sentence below is computed from the runs' numbers.",
        "",
        "## Runs",
        "",
        *[f"- {s}" for s in status_lines(runs)],
        "",
        "## Findings",
        "",
    ]
    lines += [f"- {s}" for s in found] or ["- No complete run to summarise."]
    noise = noise_sentence(runs)
    if noise:
        lines.append(f"- {noise}")
    lines += ["", "## Plots", ""]
    for name in plots:
        lines += [f"![{name}]({name})", "", PLOTS.get(name, name), ""]
    lines += [
        "## Tables",
        "",
        "Also in `tables.md`; every number is in `report.json`, the Equation 1 points in `equation1_points.csv`.",
        "",
        tables,
    ]
    return "\n".join(lines).rstrip() + "\n"


def report_json(runs: Runs, fits: list[Eq1Fit], found: list[str]) -> dict:
    return {
        "runs_dir": str(runs.folder),
        "size": runs.size,
        "complete": sorted(n for n, r in runs.runs.items() if r.complete),
        "missing": runs.missing,
        "infeasible": runs.infeasible,
        "incomplete": runs.incomplete,
        "results": {n: r.results for n, r in runs.runs.items()},
        "known_vs_d": {s: known_vs_d(runs, s) for s in SPLITS},
        "equation1": {
            f.label: {
                "description": f.description,
                "fit": f.fit.as_dict() if f.fit else None,
                "n_points": len(f.points),
                "excluded": f.excluded,
                "paper": PAPER_EQ1.get(f.label),
            }
            for f in fits
        },
        "idk": {s: idk_rows(runs, s) for s in SPLITS},
        "dynamics": dynamics_rows(runs),
        "findings": found,
    }


def _points_csv(fits: list[Eq1Fit]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["fit", "run", "at", "epoch", "accuracy", "known_fit", "unknown_fit"])
    for f in fits:
        for p in f.points:
            w.writerow(
                [
                    f.label,
                    p["run"],
                    p["at"],
                    p["epoch"],
                    f"{p['accuracy']:.4f}",
                    f"{p['known_fit']:.6f}",
                    f"{p['unknown_fit']:.6f}",
                ]
            )
    return buf.getvalue()


def write_report(runs_dir: Path, out_dir: Path | None = None) -> Path:
    """Write the report folder (default RUNS_DIR/report); returns it."""
    from .plots import write_plots

    runs = load_runs(Path(runs_dir))
    out = Path(out_dir) if out_dir else runs.folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    fits = eq1_fits(runs)
    plots = write_plots(runs, fits, out)
    tables = tables_markdown(runs, fits)
    found = findings(runs, fits)
    atomic_write_text(out / "tables.md", tables + "\n")
    atomic_write_text(out / "report.json", json.dumps(report_json(runs, fits, found), indent=2, default=str) + "\n")
    atomic_write_text(out / "equation1_points.csv", _points_csv(fits))
    atomic_write_text(out / "README.md", readme_markdown(runs, found, plots, tables))
    for name, problems in runs.incomplete.items():
        logger.warning("%s: %s", name, "; ".join(problems))
    for name in runs.missing:
        logger.warning("%s: planned but no run folder", name)
    return out


# ---------------------------------------------------------------------------------------------
# Command line: `slick-hf report RUNS_DIR` (wired in cli.py).


def add_report_parser(sub) -> None:
    p = sub.add_parser("report", help="tables, Equation 1, IDK and plots over a folder of runs (a sweep)")
    p.add_argument(
        "runs_dir", type=Path, help="a folder of run folders, e.g. outputs/runs/smollm2-135m/geo/sweep-D24-ep3"
    )
    p.add_argument("--output-dir", type=Path, help="where to write the report (default RUNS_DIR/report)")
    p.set_defaults(func=run_report_command)


def run_report_command(args: argparse.Namespace) -> None:
    out = write_report(args.runs_dir, args.output_dir)
    written = json.loads((out / "report.json").read_text())
    for name in written["missing"]:
        print(f"report: missing run {name}")
    for name in written["incomplete"]:
        print(f"report: unfinished run {name}, left out")
    for name in written["infeasible"]:
        print(f"report: infeasible run {name}, not in the sweep")
    print(f"report: {out / 'README.md'}")
