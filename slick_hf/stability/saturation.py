"""How firm an annotation's labels are, and how many generations they need.

- `labelled_rows`: the judged rows of an annotated dataset with their per-prompt evidence.
- `stability_summary`: the label stability per category (its distribution, the share of firm labels).
- `saturation_grid`: agreement of the categories from the first `k` prompts and `m` samples per prompt
  with the full budget's, overall and per category, with the generations each budget costs.
- `recommend_budget`: the cheapest budget whose agreement reaches a target.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from datasets import DatasetDict

from slick_hf.annotate.rows import adaptive_rounds
from slick_hf.core.evidence import (
    FIRM,
    Evidence,
    adaptive_cost,
    bootstrap_stability,
    budget_distribution,
    needs_unsampled,
)
from slick_hf.core.intervals import proportion_interval
from slick_hf.core.predictive import StabilityPrior, split_stability
from slick_hf.core.schema import EVIDENCE_COLUMNS, category_names
from slick_hf.core.slick import CATEGORIES
from slick_hf.errors import SlickError

SAMPLE_STEPS = (1, 2, 4, 8, 16)  # samples per prompt tried by the grid (and the annotation's own)
# stability bins of the reports: half-open [low, high), and exactly 1.0 on its own
STABILITY_BINS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.0), (1.0, 1.0))


def bin_label(low: float, high: float) -> str:
    """How a stability bin is printed."""
    return "1.0" if low == high else f"[{low:.1f}, {high:.1f})"


def bin_of(value: float) -> int:
    """Index of the stability bin that holds `value`."""
    if value >= 1.0:
        return len(STABILITY_BINS) - 1
    return next(i for i, (low, high) in enumerate(STABILITY_BINS) if low <= value < high)


@dataclass
class LabelledRows:
    """The judged rows of one annotation: keys (split, id), categories, per-prompt evidence, stability."""

    name: str
    meta: Mapping
    keys: list[tuple[str, str]]
    categories: list[str]
    evidence: list[Evidence]
    stability: list[float | None]  # the predictive stability (`slick_label_stability`), priors fitted per split
    bootstrap: list[float | None]  # the prompt bootstrap's, for comparison
    priors: dict[str, StabilityPrior]

    @property
    def num_prompts(self) -> int:
        """Few-shot prompts per example of this annotation."""
        return int(self.meta.get("slick", {}).get("num_prompts") or self.evidence[0].num_prompts)

    @property
    def num_samples(self) -> int:
        """Samples per prompt of this annotation."""
        return int(self.meta.get("slick", {}).get("num_samples", 16))

    @property
    def has_sample_counts(self) -> bool:
        """Whether per-prompt sample counts were stored (annotations made since label stability exists)."""
        return all(e.drawn is not None for e in self.evidence)


def labelled_rows(annotated: DatasetDict, meta: Mapping, name: str) -> LabelledRows:
    """The judged rows of every split of an annotated dataset; SlickError when none can be read."""
    keys, cats, evidence, stability, bootstrap, priors = [], [], [], [], [], {}
    num_samples = int(meta.get("slick", {}).get("num_samples", 16))
    for split, ds in annotated.items():
        names = category_names(ds, allow_missing=True)
        missing = [c for c in ("id", "answers", "slick_greedy_answers") if c not in ds.column_names]
        if missing:
            raise SlickError(f"{name} split {split}: missing column(s) {', '.join(missing)}; not a SliCK annotation")
        columns = ["id", "answers", "slick_greedy_answers", *(c for c in EVIDENCE_COLUMNS if c in ds.column_names)]
        judged = [(row, cat) for row, cat in zip(ds.select_columns(columns).to_list(), names, strict=True) if cat]
        if not judged:
            continue
        split_evidence = [Evidence.from_row(row) for row, _ in judged]
        values, priors[split] = split_stability(split_evidence, [cat for _, cat in judged], num_samples)
        keys += [(split, row["id"]) for row, _ in judged]
        cats += [cat for _, cat in judged]
        evidence += split_evidence
        stability += values
        bootstrap += [bootstrap_stability(e, num_samples) for e in split_evidence]
    if not keys:
        raise SlickError(f"{name}: no row SliCK judged; nothing to measure")
    return LabelledRows(name, meta, keys, cats, evidence, stability, bootstrap, priors)


def share(values: Sequence[float]) -> dict:
    """Mean of per-row probabilities, with its n and Wilson interval (expected successes)."""
    n = len(values)
    if not n:
        return {"n": 0, "value": None, "ci": None}
    total = float(sum(values))
    return {"n": n, "value": total / n, "ci": proportion_interval(total, n)}


def stability_summary(rows: LabelledRows) -> dict:
    """Per category: n, mean stability, the share of firm labels (>= FIRM) with its interval, the bins."""
    out = {}
    for cat in (*CATEGORIES, "all"):
        values = [
            s for c, s in zip(rows.categories, rows.stability, strict=True) if s is not None and cat in (c, "all")
        ]
        unknown = sum(
            1 for c, s in zip(rows.categories, rows.stability, strict=True) if s is None and cat in (c, "all")
        )
        bins = [0] * len(STABILITY_BINS)
        for v in values:
            bins[bin_of(v)] += 1
        boot = [b for c, b in zip(rows.categories, rows.bootstrap, strict=True) if b is not None and cat in (c, "all")]
        out[cat] = {
            "n": len(values),
            "bootstrap_mean": sum(boot) / len(boot) if boot else None,
            "not_computable": unknown,
            "mean": sum(values) / len(values) if values else None,
            "firm": share([float(v >= FIRM) for v in values]),
            "bins": dict(zip((bin_label(*b) for b in STABILITY_BINS), bins, strict=True)),
        }
    return out


def saturation_grid(rows: LabelledRows, sample_steps: Sequence[int] = SAMPLE_STEPS) -> list[dict]:
    """One cell per (k prompts, m samples): agreement with the full budget and expected generations.

    A cell's categories are what `--num-prompts k --num-samples m` gives: the first `k` exemplar sets
    and a random `m` of each prompt's samples (an expectation over them, so exact, no Monte Carlo).
    Rows whose cell needs samples adaptive sampling never drew are counted in `unsampled_rows`:
    their agreement is a lower bound there and their cost an upper bound.
    """
    K, S = rows.num_prompts, rows.num_samples
    ms = sorted({m for m in sample_steps if m < S} | {S})
    cells = []
    for k in range(1, K + 1):
        rounds = adaptive_rounds(k)
        for m in ms:
            agree: dict[str, list[float]] = {c: [] for c in CATEGORIES}
            costs, unsampled = [], 0
            for cat, e in zip(rows.categories, rows.evidence, strict=True):
                dist = budget_distribution(e, k, m)
                cost = adaptive_cost(e, k, m, rounds)
                if dist is None or cost is None:
                    continue
                agree[cat].append(dist.get(cat, 0.0))
                costs.append(cost)
                unsampled += needs_unsampled(e, k)
            every = [a for values in agree.values() for a in values]
            cells.append(
                {
                    "prompts": k,
                    "samples": m,
                    "agreement": share(every),
                    "by_category": {c: share(v) for c, v in agree.items()},
                    "generations": sum(costs) / len(costs) if costs else None,
                    "unsampled_rows": unsampled,
                }
            )
    return cells


def recommend_budget(cells: Sequence[dict], target: float) -> dict:
    """The cheapest cell whose agreement with the full budget is >= `target`, and what it saves."""
    full = max(cells, key=lambda c: (c["prompts"], c["samples"]))
    ok = [c for c in cells if c["agreement"]["value"] is not None and c["agreement"]["value"] >= target]
    best = min(ok, key=lambda c: (c["generations"], c["prompts"], c["samples"]))
    saved = 1.0 - best["generations"] / full["generations"] if full["generations"] else 0.0
    return {
        "target": target,
        "prompts": best["prompts"],
        "samples": best["samples"],
        "agreement": best["agreement"],
        "generations": best["generations"],
        "full_generations": full["generations"],
        "saved": saved,
        "flags": f"--num-prompts {best['prompts']} --num-samples {best['samples']}",
    }
