"""The stability report folder: README.md, stability.json and its PNG plots, written as one new version."""

import json
from collections.abc import Mapping
from pathlib import Path

from slick_hf.annotate.card import reproducibility_note
from slick_hf.atomic_dir import new_version
from slick_hf.core.evidence import FIRM
from slick_hf.core.markdown import markdown_table
from slick_hf.core.slick import CATEGORIES
from slick_hf.hub import atomic_write_text
from slick_hf.stability.compare import calibration, compare_annotations, draw_agreement, independent_draws
from slick_hf.stability.plots import calibration_plot, saturation_plot, stability_plot
from slick_hf.stability.saturation import LabelledRows, recommend_budget, saturation_grid, stability_summary

REPORT_JSON = "stability.json"
FLIPS_SHOWN = 30


def pct(share: Mapping) -> str:
    """A share as `xx.x% [lo, hi] (n)`."""
    if share["value"] is None:
        return "—"
    low, high = share["ci"]
    return f"{100 * share['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] (n={share['n']})"


def stability_record(a: LabelledRows, b: LabelledRows | None, target: float) -> dict:
    """Everything the report shows, as one JSON-ready dict."""
    cells = saturation_grid(a)
    record = {
        "annotation": a.name,
        "model": dict(a.meta.get("model", {})),
        "slick": dict(a.meta.get("slick", {})),
        "rows": len(a.keys),
        "categories": {c: a.categories.count(c) for c in CATEGORIES},
        "per_prompt_sample_counts": a.has_sample_counts,
        "stability": stability_summary(a),
        "priors": {split: prior.to_dict() for split, prior in a.priors.items()},
        "saturation": cells,
        "recommendation": recommend_budget(cells, target),
    }
    if b is not None:
        record["compare"] = {"annotation": b.name, **compare_annotations(a, b)}
        record["independent_draw"] = independent_draws(a, b)
        if record["independent_draw"]:
            record["calibration"] = calibration(a, b)
            record["draw_agreement"] = draw_agreement(a, b)
    return record


def _grid_tables(cells: list[dict]) -> tuple[str, str]:
    ks = sorted({c["prompts"] for c in cells})
    ms = sorted({c["samples"] for c in cells})
    at = {(c["prompts"], c["samples"]): c for c in cells}
    agree = [[k, *(f"{100 * at[k, m]['agreement']['value']:.1f}" for m in ms)] for k in ks]
    cost = [[k, *(f"{at[k, m]['generations']:.1f}" for m in ms)] for k in ks]
    header = ["prompts \\ samples", *map(str, ms)]
    return markdown_table(header, agree), markdown_table(header, cost)


def _category_table(cells: list[dict], recommended: Mapping) -> str:
    full = max(cells, key=lambda c: (c["prompts"], c["samples"]))
    chosen = [c for c in cells if (c["prompts"], c["samples"]) == (recommended["prompts"], recommended["samples"])]
    wanted = sorted({1, 2, 3, 5, recommended["prompts"], full["prompts"]})
    rows = [c for c in cells if c["samples"] == full["samples"] and c["prompts"] in wanted]
    rows += [c for c in chosen if c not in rows]
    return markdown_table(
        ["prompts", "samples", "generations", "all", *CATEGORIES],
        [
            [c["prompts"], c["samples"], f"{c['generations']:.1f}", pct(c["agreement"])]
            + [pct(c["by_category"][cat]) for cat in CATEGORIES]
            for c in rows
        ],
    )


def _compare_section(record: Mapping) -> list[str]:
    comp = record["compare"]
    diff = "; ".join(f"{k}: {v[0]} vs {v[1]}" for k, v in comp["differences"].items()) or "nothing recorded"
    out = [
        f"## Compared with `{comp['annotation']}`",
        "",
        f"What differs: {diff}. Shared rows: {comp['shared_rows']} (only in this annotation: {comp['only_in_a']}, "
        f"only in the other: {comp['only_in_b']}). Categories equal: {pct(comp['agreement'])}; "
        f"{comp['flips']} flips, {comp['edge_flips']} of them edge cases (one greedy answer or one sample from the "
        "boundary).",
        "",
        "Confusion matrix (rows: this annotation, columns: the other):",
        "",
        markdown_table(
            ["", *CATEGORIES, "total"],
            [
                [c, *(comp["confusion"][c][d] for d in CATEGORIES), sum(comp["confusion"][c].values())]
                for c in CATEGORIES
            ],
        ),
    ]
    if comp["flipped_rows"]:
        shown = comp["flipped_rows"][:FLIPS_SHOWN]
        out += [
            "",
            f"Flips ({len(shown)} of {comp['flips']} shown; all in {REPORT_JSON}):",
            "",
            markdown_table(
                ["split", "id", "this", "other", "edge", "greedy correct", "samples correct"],
                [
                    [f["split"], f["id"], f["a"], f["b"], "yes" if f["edge"] else "no"]
                    + [f"{f['a_greedy_correct']} vs {f['b_greedy_correct']}"]
                    + [f"{f['a_samples_correct'] or '—'} vs {f['b_samples_correct'] or '—'}"]
                    for f in shown
                ],
            ),
        ]
    if not record["independent_draw"]:
        out += [
            "",
            "This comparison is not an independent draw of the same labels (that needs the same model and "
            "settings with another `--seed`), so it does not check the stability's calibration.",
        ]
        return out
    cal, draws = record["calibration"], record["draw_agreement"]
    last = draws[-1]
    boot = cal["bootstrap"]
    out += [
        "",
        "### Calibration: predicted stability against another draw",
        "",
        "The other annotation is an independent draw (another `--seed`: other exemplar sets, other samples). Per "
        "bin of predicted stability, how often the other draw gives this annotation's category, for "
        "`slick_label_stability` (the posterior predictive) and for a plain bootstrap of the row's own prompts:",
        "",
        markdown_table(
            ["stability bin", "slick_label_stability: mean", "observed", "bootstrap: mean", "observed"],
            [
                [p["bin"], _mean_cell(p), pct(p["observed"]), _mean_cell(q), pct(q["observed"])]
                for p, q in zip(cal["bins"], boot["bins"], strict=True)
            ],
        ),
        "",
        f"All rows: `slick_label_stability` predicts {100 * cal['predicted']:.1f}%, the bootstrap "
        f"{100 * boot['predicted']:.1f}%; observed {pct(cal['observed'])}.",
        "",
        "### Agreement of two draws as prompts grow",
        "",
        markdown_table(["prompts per draw", "categories equal"], [[d["prompts"], pct(d["agreement"])] for d in draws]),
        "",
        f"With {last['prompts']} prompts, two draws agree on {pct(last['agreement'])} of the labels"
        + (" (at least 90%)." if last["agreement"]["value"] >= 0.9 else " (below 90%)."),
        "",
        f"![calibration]({record['plots']['calibration']})",
    ]
    return out


def _mean_cell(row: Mapping) -> str:
    return "—" if row["predicted"] is None else f"{100 * row['predicted']:.1f}%"


def readme_markdown(record: Mapping) -> str:
    """The report's README: budget recommendation, saturation grid, stability, comparison."""
    rec, cells = record["recommendation"], record["saturation"]
    agree, cost = _grid_tables(cells)
    slick, model = record["slick"], record["model"]
    counts = ", ".join(f"{c} {n}" for c, n in record["categories"].items())
    out = [
        f"# SliCK label stability: `{record['annotation']}`",
        "",
        f"{record['rows']} judged rows ({counts}); model `{model.get('model_id')}`, engine `{model.get('engine')}`; "
        f"{slick.get('num_prompts')} prompts x (1 greedy + {slick.get('num_samples')} samples), "
        f"{'full' if slick.get('full_sampling') else 'adaptive'} sampling, seed {slick.get('seed')}.",
        f"Reproducibility: {reproducibility_note(model)}.",
        "",
        "## Budget recommendation",
        "",
        f"The cheapest budget whose categories agree with the full budget's on at least {100 * rec['target']:.0f}% "
        f"of the rows: **{rec['prompts']} prompts x {rec['samples']} samples** (`slick-hf annotate {rec['flags']}`), "
        f"agreement {pct(rec['agreement'])}, {rec['generations']:.1f} generations per example against "
        f"{rec['full_generations']:.1f} ({100 * rec['saved']:.0f}% saved).",
    ]
    if not record["per_prompt_sample_counts"]:
        out += [
            "",
            "This annotation was made before per-prompt sample counts were stored: the stability of WeaklyKnown "
            "and Unknown labels, and every budget where greedy answers alone do not decide, cannot be computed "
            "(those rows are left out of the cells that need them). Annotate again to get them.",
        ]
    out += [
        "",
        "## Saturation: agreement with the full budget (%)",
        "",
        "Each cell takes the categories from the first k few-shot prompts and a random m of each prompt's "
        "samples, as `--num-prompts k --num-samples m` would (an exact expectation over the samples); the "
        "full-budget cell is 100% by construction. Generations are the expected cost per example with adaptive "
        "sampling.",
        "",
        agree,
        "",
        "Expected generations per example:",
        "",
        cost,
        "",
        "Per category (95% intervals):",
        "",
        _category_table(cells, rec),
        "",
        f"![saturation]({record['plots']['saturation']})",
    ]
    if any(c["unsampled_rows"] for c in cells):
        out += [
            "",
            "Cells where adaptive sampling had not drawn a prompt's samples count them as wrong: there the "
            "agreement is a lower bound and the cost an upper bound (rows per cell in "
            f"{REPORT_JSON}, `unsampled_rows`); `--full-sampling` annotations have none.",
        ]
    summary = record["stability"]
    out += [
        "",
        "## Label stability per category",
        "",
        "`slick_label_stability`: the probability that an independent re-annotation (new exemplar sets, new "
        "samples, the same budget) gives the row's category, the posterior predictive under Beta priors fitted "
        f"to each split (priors in {REPORT_JSON}). Firm: >= {FIRM}.",
        "",
        markdown_table(
            ["category", "rows", "mean", f"firm (>= {FIRM})", *summary["all"]["bins"]],
            [
                [c, summary[c]["n"], "—" if summary[c]["mean"] is None else f"{summary[c]['mean']:.3f}"]
                + [pct(summary[c]["firm"]), *summary[c]["bins"].values()]
                for c in (*CATEGORIES, "all")
            ],
        ),
        "",
        "Even all-or-nothing evidence (10 of 10 greedy answers, no correct sample in 160) is not certain to "
        "repeat: a bootstrap of the row's own prompts would call it 1.0 (mean bootstrap stability here: "
        f"{summary['all']['bootstrap_mean']:.3f}).",
        "",
        f"![stability]({record['plots']['stability']})",
    ]
    if "compare" in record:
        out += ["", *_compare_section(record)]
    return "\n".join(out) + "\n"


def write_stability_report(a: LabelledRows, b: LabelledRows | None, out_dir: Path, target: float = 0.95) -> Path:
    """Write the report folder (README.md, stability.json, PNGs) as one new version; return it."""
    record = stability_record(a, b, target)
    with new_version(Path(out_dir)) as stage:
        plots = {
            "saturation": saturation_plot(record["saturation"], record["recommendation"], stage),
            "stability": stability_plot(record["stability"], stage),
        }
        if record.get("independent_draw"):
            plots["calibration"] = calibration_plot(record["calibration"], record["draw_agreement"], stage)
        record["plots"] = plots
        atomic_write_text(stage / REPORT_JSON, json.dumps(record, indent=2) + "\n")
        atomic_write_text(stage / "README.md", readme_markdown(record))
    return Path(out_dir)
