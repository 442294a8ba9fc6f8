"""Two annotations of the same questions, side by side.

- `compare_annotations`: the confusion matrix over the shared rows, and every flip with whether it
  is an edge case (one greedy answer or one sample from the boundary).
- `calibration`: with an independent second draw (another `--seed`: other exemplar sets, other
  samples), the observed agreement per bin of predicted label stability.
- `draw_agreement`: how often two independent draws agree as the number of prompts grows.
"""

from collections.abc import Sequence

from slick_hf.core.evidence import agreement, budget_distribution, edge_flip
from slick_hf.core.slick import CATEGORIES
from slick_hf.errors import SlickError
from slick_hf.stability.saturation import STABILITY_BINS, LabelledRows, bin_label, bin_of, share

# what decides an annotation's labels besides its rows: differing here explains a comparison
ANNOTATION_FIELDS = (("model", "model_id"), ("model", "model_revision"), ("model", "engine"), ("model", "dtype"))


def shared_indices(a: LabelledRows, b: LabelledRows) -> list[tuple[int, int]]:
    """Pairs of row indices of the same (split, id) in both; SlickError when there are none."""
    where = {key: j for j, key in enumerate(b.keys)}
    pairs = [(i, where[key]) for i, key in enumerate(a.keys) if key in where]
    if not pairs:
        raise SlickError(
            f"{a.name} and {b.name} share no judged row (same split and id): compare two annotations of the "
            "same questions"
        )
    return pairs


def differences(a: LabelledRows, b: LabelledRows) -> dict:
    """What differs between the two annotations' settings: model, engine, dtype, threads, SliCK parameters."""
    out = {}
    for part, name in (*ANNOTATION_FIELDS, ("model", "threads")):
        x, y = a.meta.get(part, {}).get(name), b.meta.get(part, {}).get(name)
        if x != y:
            out[name] = [x, y]
    for name in sorted(set(a.meta.get("slick", {})) | set(b.meta.get("slick", {}))):
        x, y = a.meta.get("slick", {}).get(name), b.meta.get("slick", {}).get(name)
        if x != y:
            out[name] = [x, y]
    return out


def independent_draws(a: LabelledRows, b: LabelledRows) -> bool:
    """Whether `b` is another draw of `a`'s labels: the same model and settings, another SliCK seed."""
    diff = differences(a, b)
    return "seed" in diff and not set(diff) - {"seed", "num_prompts", "full_sampling", "threads"}


def compare_annotations(a: LabelledRows, b: LabelledRows) -> dict:
    """Confusion matrix (rows: `a`, columns: `b`) over the shared rows, flips and edge cases."""
    pairs = shared_indices(a, b)
    confusion = {c: dict.fromkeys(CATEGORIES, 0) for c in CATEGORIES}
    flips = []
    for i, j in pairs:
        ca, cb = a.categories[i], b.categories[j]
        confusion[ca][cb] += 1
        if ca != cb:
            ea, eb = a.evidence[i], b.evidence[j]
            flips.append(
                {
                    "split": a.keys[i][0],
                    "id": a.keys[i][1],
                    "a": ca,
                    "b": cb,
                    "edge": edge_flip(ea, ca, eb, cb),
                    "a_greedy_correct": f"{sum(ea.greedy)}/{ea.num_prompts}",
                    "b_greedy_correct": f"{sum(eb.greedy)}/{eb.num_prompts}",
                    "a_samples_correct": None if ea.correct is None else f"{sum(ea.correct)}/{sum(ea.drawn)}",
                    "b_samples_correct": None if eb.correct is None else f"{sum(eb.correct)}/{sum(eb.drawn)}",
                }
            )
    same = len(pairs) - len(flips)
    return {
        "shared_rows": len(pairs),
        "only_in_a": len(a.keys) - len(pairs),
        "only_in_b": len(b.keys) - len(pairs),
        "differences": differences(a, b),
        "confusion": confusion,
        "agreement": share([1.0] * same + [0.0] * len(flips)),
        "flips": len(flips),
        "edge_flips": sum(f["edge"] for f in flips),
        "flipped_rows": flips,
    }


def _binned(pairs: list[tuple[float, float]]) -> dict:
    """Per stability bin: the mean predicted stability and the observed agreement (with its interval)."""
    bins: list[list[tuple[float, float]]] = [[] for _ in STABILITY_BINS]
    for predicted, observed in pairs:
        bins[bin_of(predicted)].append((predicted, observed))
    return {
        "bins": [
            {
                "bin": bin_label(low, high),
                "predicted": sum(p for p, _ in values) / len(values) if values else None,
                "observed": share([o for _, o in values]),
            }
            for (low, high), values in zip(STABILITY_BINS, bins, strict=True)
        ],
        "predicted": sum(p for p, _ in pairs) / len(pairs) if pairs else None,
        "observed": share([o for _, o in pairs]),
    }


def calibration(a: LabelledRows, b: LabelledRows) -> dict:
    """Per bin of `a`'s label stability: its mean, and how often `b` (another draw) gives `a`'s label;
    the same for the prompt bootstrap, for comparison.

    `b`'s label is taken at `a`'s budget (its first prompts and samples), so a `b` annotated with more
    prompts still checks `a`'s labels as made.
    """
    predictive, bootstrap, skipped = [], [], 0
    for i, j in shared_indices(a, b):
        dist = budget_distribution(b.evidence[j], a.num_prompts, min(a.num_samples, b.num_samples))
        if a.stability[i] is None or dist is None:
            skipped += 1
            continue
        observed = dist.get(a.categories[i], 0.0)
        predictive.append((a.stability[i], observed))
        if a.bootstrap[i] is not None:
            bootstrap.append((a.bootstrap[i], observed))
    return {**_binned(predictive), "bootstrap": _binned(bootstrap), "not_computable": skipped}


def draw_agreement(a: LabelledRows, b: LabelledRows, prompts: Sequence[int] | None = None) -> list[dict]:
    """Agreement of two independent draws' categories from their first `k` prompts, for each `k`."""
    pairs = shared_indices(a, b)
    m = min(a.num_samples, b.num_samples)
    out = []
    for k in prompts or range(1, min(a.num_prompts, b.num_prompts) + 1):
        values = []
        for i, j in pairs:
            da, db = budget_distribution(a.evidence[i], k, m), budget_distribution(b.evidence[j], k, m)
            if da is not None and db is not None:
                values.append(agreement(da, db))
        out.append({"prompts": k, "samples": m, "agreement": share(values)})
    return out
