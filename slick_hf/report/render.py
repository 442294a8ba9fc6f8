"""The report folder: README.md (findings, plots, tables), tables.md, report.json, equation1_points.csv.

Reads every run folder under RUNS_DIR (see `slick_hf.runs`); a run that is missing or
unfinished is named in the README and left out of what needs it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from slick_hf.atomic_dir import new_version
from slick_hf.core.markdown import markdown_table
from slick_hf.hub import atomic_write_text
from slick_hf.report.analysis import (
    SPLIT_LABEL,
    SPLITS,
    Eq1Fit,
    category_rows,
    dynamics_rows,
    eq1_fits,
    fmt,
    idk_rows,
    known_vs_d,
    pct_label,
)
from slick_hf.report.findings import findings, noise_sentence
from slick_hf.report.paper import PAPER_EQ1
from slick_hf.report.plots import write_plots
from slick_hf.report.verdicts import verdicts
from slick_hf.runs import POINT_LABEL, Runs, load_runs

logger = logging.getLogger(__name__)


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
            "The paper column is the paper's Table 2 (PaLM 2-M on EntityQuestions): compare shapes, not levels."
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
                pct_label(r["ratio"]) + (" (D_Known = D)" if r["same_run"] else ""),
                r["known_size"] if r["known_size"] is not None else "–",
                fmt(r["d_early_stop"]),
                fmt(r["known_early_stop"]),
                fmt(r["d_convergence"]),
                fmt(r["known_convergence"]),
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
                fmt(f.fit.r2, 2),
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
        "cluster-robust (CR1) standard errors with the run (variant and seed) as the cluster, since the "
        "points of one run are not independent, and Student t quantiles with (runs - 1) degrees of freedom. "
        "Our runs record test accuracy only at EARLY_STOP and CONVERGENCE, so the test fits have 2 points "
        "per run; the dev fit uses every epoch but dev also chose EARLY_STOP. All points of one test set "
        "share its questions, which these intervals do not model. "
        + (f"Left out: {', '.join(excluded)}." if excluded else ""),
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
                fmt(r["answered"]),
                fmt(r["accuracy_answered"]),
                fmt(r["accuracy"]),
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
                fmt(r["es_epoch"], 0),
                fmt(r["last_epoch"], 0),
                fmt(r["best_dev"]),
                f"{fmt(r['known_fit_es'], 0)} / {fmt(r['unknown_fit_es'], 0)}",
                f"{fmt(r['known_fit_conv'], 0)} / {fmt(r['unknown_fit_conv'], 0)}",
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
            + "; ".join(f"**{n}** ({reason})" for n, reason in runs.infeasible.items())
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
    "accuracy_vs_unknown.png": "Test accuracy (mean over seeds, 95% interval) against the share of Unknown "
    "examples in D, at EARLY_STOP and CONVERGENCE; dashed: D_Known (D with those Unknown examples removed).",
    "train_fit.png": "Share of Known and Unknown train examples the model fits, per epoch (the paper's Figure 1 "
    "and 4 shapes); the dotted line marks EARLY_STOP.",
    "dev_accuracy.png": "Dev accuracy per epoch, one line per run (the seeds of a variant share its colour); "
    "a dot marks EARLY_STOP.",
    "equation1.png": "Equation 1: fitted against observed accuracy, one point per (run, epoch).",
}


def _decide_text(decide: dict | None) -> str:
    return f". To decide: {decide['text']}" if decide else ""


def verdicts_markdown(judged: list[dict]) -> str:
    """The verdicts table: each of the paper's findings, our verdict and the statistic that decides it."""
    rows = [
        [v["finding"], v["claim"], f"**{v['verdict']}**", v["statistic"] + _decide_text(v.get("to_decide"))]
        for v in judged
    ]
    return markdown_table(["#", "the paper's finding", "here", "deciding statistic (95% interval)"], rows)


def readme_markdown(runs: Runs, found: list[str], plots: Sequence[str], tables: str, judged: list[dict]) -> str:
    """README.md of the report: runs, verdicts, findings, plots, tables."""
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
        "## Verdicts",
        "",
        "Each finding of the paper, judged by an interval: **reproduced** when it lies on the paper's side, "
        "**not reproduced** when it lies on the other side, **inconclusive** when it straddles. Accuracies are "
        "means over seeds; their intervals combine the test set's binomial noise and the spread of seeds.",
        "",
        verdicts_markdown(judged),
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


def report_json(runs: Runs, fits: list[Eq1Fit], found: list[str], judged: list[dict]) -> dict:
    """Every number of the report."""
    return {
        "runs_dir": str(runs.folder),
        "size": runs.size,
        "seeds": runs.seeds,
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
        "verdicts": judged,
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
    """Write the report folder (default RUNS_DIR/report) as one new version (plots never without a README)."""
    runs = load_runs(Path(runs_dir))
    out = Path(out_dir) if out_dir else runs.folder / "report"
    fits = eq1_fits(runs)
    with new_version(out) as stage:
        plots = write_plots(runs, fits, stage)
        tables = tables_markdown(runs, fits)
        found = findings(runs, fits)
        judged = verdicts(runs, fits)
        record = report_json(runs, fits, found, judged)
        atomic_write_text(stage / "tables.md", tables + "\n")
        atomic_write_text(stage / "report.json", json.dumps(record, indent=2, default=str) + "\n")
        atomic_write_text(stage / "equation1_points.csv", _points_csv(fits))
        atomic_write_text(stage / "README.md", readme_markdown(runs, found, plots, tables, judged))
    for name, run in runs.runs.items():
        if run.problems:  # unfinished runs, and finished ones with a damaged file
            logger.warning("%s: %s", name, "; ".join(run.problems))
    for name in runs.missing:
        logger.warning("%s: planned but no run folder", name)
    return out
