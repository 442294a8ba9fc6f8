"""The slick-hf section of an annotated dataset's card, and the statistics it shows."""

from collections import Counter
from collections.abc import Mapping, Sequence

from datasets import Dataset

from slick_hf.core.evidence import FIRM, Evidence
from slick_hf.core.markdown import markdown_table
from slick_hf.core.predictive import fit_prior
from slick_hf.core.schema import EVIDENCE_COLUMNS, SKIPPED_DOC, SLICK_COLUMN_DOCS, STABILITY_COLUMN, category_names
from slick_hf.core.slick import CATEGORIES
from slick_hf.data.formats import SKIP_COLUMN


def category_stats(ds: Dataset) -> dict:
    """Category counts per split and per relation, and mean generations per category."""
    cats = category_names(ds, allow_missing=True)
    by_relation: dict[str, Counter] = {}
    for rel, cat in zip(ds["relation"], cats, strict=True):
        by_relation.setdefault(rel, Counter())[cat] += 1
    gens: dict[str, list[int]] = {}
    for cat, g in zip(cats, ds["slick_generations"], strict=True):
        if cat is not None:
            gens.setdefault(cat, []).append(g)
    stability: dict[str, Counter] = {}
    prior = None
    if STABILITY_COLUMN in ds.column_names:
        judged = [
            row for row, cat in zip(ds.select_columns(list(EVIDENCE_COLUMNS)).to_list(), cats, strict=True) if cat
        ]
        prior = fit_prior([Evidence.from_row(row) for row in judged]).to_dict() if judged else None
        for cat, value in zip(cats, ds[STABILITY_COLUMN][:], strict=True):
            if cat is not None and value is not None:
                stability.setdefault(cat, Counter())["firm" if value >= FIRM else "uncertain"] += 1
    skipped = Counter(ds[SKIP_COLUMN][:]) if SKIP_COLUMN in ds.column_names else Counter()
    skipped.pop(None, None)
    return {
        "num_examples": len(ds),
        "not_judged": dict(sorted(skipped.items())),
        "categories": {c: Counter(cats)[c] for c in CATEGORIES},
        "by_relation": {rel: {c: cnt[c] for c in CATEGORIES} for rel, cnt in sorted(by_relation.items())},
        "generations": {
            "total": int(sum(sum(v) for v in gens.values())),
            "mean_by_category": {c: sum(v) / len(v) for c, v in gens.items()},
        },
    } | (
        {"stability": {c: dict(stability[c]) for c in CATEGORIES if c in stability}, "stability_prior": prior}
        if stability
        else {}
    )


def reproducibility_note(model: Mapping) -> str:
    """Which guarantee the labels of an engine carry: the same on any machine, or only as recorded."""
    dtype = model.get("dtype", "float32")
    if model.get("engine") in ("tgi", "openai") and model.get("seeded_samples") != "false":
        return "labels come from a server: reproducible as far as that server is (its dtype and batching)"
    if model.get("engine") in ("vllm", "openai") and model.get("seeded_samples") != "true":
        return (
            "the samples were drawn without per-request seeds (vLLM on CPU cannot seed single requests), so they "
            "come from the engine's own stream: greedy answers are reproducible, sampled ones (and with them the "
            "WeaklyKnown and Unknown labels) are not"
        )
    if dtype == "float32":
        return (
            "float32, the reproducible mode: the same rows give the same categories at any CPU thread count "
            "(tested) and batching"
        )
    return (
        f"{dtype}: reductions split over another number of CPU threads round differently, so the labels are "
        "reproducible with the same thread count (recorded here); `--dtype float32` gives the same labels at "
        "any thread count"
    )


def _mix_rows(counts: Mapping[str, int]) -> list:
    total = sum(counts.values()) or 1
    return [f"{counts.get(c, 0)} ({100 * counts.get(c, 0) / total:.0f}%)" for c in CATEGORIES]


def render_annotation_section(metas: Sequence[Mapping]) -> str:
    """The slick-hf part of a dataset card: one subsection per annotating model (config)."""
    out = [
        "# SliCK knowledge annotation",
        "",
        "Each question is labelled with the SliCK knowledge category of the annotating model "
        "(Gekhman et al. 2024, [arXiv:2405.05904](https://arxiv.org/abs/2405.05904)), made with "
        "slick-hf. Load a config with "
        "`datasets.load_dataset(<this repo>, <config>)`.",
        "",
        "## Columns",
        "",
        markdown_table(["column", "meaning"], sorted({**SLICK_COLUMN_DOCS, SKIP_COLUMN: SKIPPED_DOC}.items())),
    ]
    for meta in metas:
        model, cfg = meta["model"], meta["slick"]
        sampling = "full (exact P(T>0))" if cfg["full_sampling"] else "adaptive (P(T>0) is a lower bound)"
        out += [
            "",
            f"## Config `{meta['config_name']}`",
            "",
            f"- Model: `{model.get('model_id')}` at revision `{model.get('model_revision')}`",
            f"- Engine: `{model.get('engine')}`, computing in `{model.get('dtype', 'float32')}`"
            + (f" on {model['threads']} CPU thread(s)" if "threads" in model else "")
            + f"; sampling: {sampling}",
            f"- Source data: `{meta['dataset']['source']}`, relations {', '.join(meta['dataset']['relations'])}",
            f"- Exemplars from: {meta['dataset'].get('exemplars_from', 'the dev split')}",
            "- SliCK parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(cfg.items())),
            f"- Reproducibility: {reproducibility_note(model)}",
        ]
        for splits, report in sorted(meta["dataset"].get("reports", {}).items()):
            out += ["", f"Data preparation ({splits}):", "", "```", report, "```"]
        for split, stats in sorted(meta["splits"].items()):
            out += ["", f"### {split}: {stats['num_examples']} examples", ""]
            rows = [["all", *_mix_rows(stats["categories"])]]
            rows += [[rel, *_mix_rows(c)] for rel, c in stats["by_relation"].items()]
            out.append(markdown_table(["relation", *CATEGORIES], rows))
            gens = stats["generations"]
            by_cat = gens["mean_by_category"]
            mean = ", ".join(f"{c} {by_cat[c]:.1f}" for c in CATEGORIES if c in by_cat)
            out += ["", f"Generations: {gens['total']} in all; per example by category: {mean}."]
            if stats.get("stability"):
                by_cat = stats["stability"]
                firm = ", ".join(
                    f"{c} {by_cat[c].get('firm', 0)} firm / {by_cat[c].get('uncertain', 0)} not"
                    for c in CATEGORIES
                    if c in by_cat
                )
                out += [
                    "",
                    f"Label stability (`slick_label_stability` >= {FIRM}: firm): {firm}. The stability is the "
                    "probability that an independent re-annotation (new exemplar sets, new samples) gives the same "
                    "category, under Beta priors fitted to this split; `slick-hf stability` reports it in full.",
                ]
            if stats.get("not_judged"):
                skipped = ", ".join(f"{n} {why}" for why, n in stats["not_judged"].items())
                out += ["", f"Kept but not judged (slick_category null): {skipped}."]
        out += [
            "",
            "<details><summary>Exemplar sets (drawn once per relation; the first shots of each "
            "set are used, the last is a spare that replaces the target when the target is itself an exemplar)"
            "</summary>",
            "",
        ]
        for rel, pools in meta["exemplars"].items():
            out.append(f"**{rel}**")
            out.append("")
            for k, pool in enumerate(pools):
                shots = "; ".join(f"{e['question']} → {e['answer']}" for e in pool)
                out.append(f"{k + 1}. {shots}")
            out.append("")
        out.append("</details>")
    return "\n".join(out)
