"""The stability report's PNG plots (matplotlib, Agg backend)."""

from collections.abc import Mapping, Sequence
from pathlib import Path

from slick_hf.core.slick import CATEGORIES
from slick_hf.report.plots import DPI, plotting

SATURATION_PNG = "saturation.png"
STABILITY_PNG = "stability.png"
CALIBRATION_PNG = "calibration.png"


def _save(fig, path: Path) -> str:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plotting().close(fig)
    return path.name


def saturation_plot(cells: Sequence[Mapping], recommended: Mapping, out: Path) -> str:
    """Agreement with the full budget per (prompts, samples), the recommended cell circled."""
    plt = plotting()
    ks = sorted({c["prompts"] for c in cells})
    ms = sorted({c["samples"] for c in cells})
    grid = [[None] * len(ks) for _ in ms]
    for c in cells:
        grid[ms.index(c["samples"])][ks.index(c["prompts"])] = 100 * (c["agreement"]["value"] or 0.0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(ks), 1.2 + 0.5 * len(ms)))
    image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=min(min(r) for r in grid), vmax=100, aspect="auto")
    for y, row in enumerate(grid):
        for x, value in enumerate(row):
            ax.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=8, color="w" if value < 90 else "k")
    ax.add_patch(
        plt.Rectangle(
            (ks.index(recommended["prompts"]) - 0.5, ms.index(recommended["samples"]) - 0.5),
            1,
            1,
            fill=False,
            edgecolor="red",
            linewidth=2,
        )
    )
    ax.set_xticks(range(len(ks)), ks)
    ax.set_yticks(range(len(ms)), ms)
    ax.set_xlabel("few-shot prompts (first k)")
    ax.set_ylabel("samples per prompt")
    ax.set_title(f"Agreement with the full budget (%); red: cheapest >= {100 * recommended['target']:.0f}%")
    fig.colorbar(image, ax=ax)
    return _save(fig, out / SATURATION_PNG)


def stability_plot(summary: Mapping, out: Path) -> str:
    """Label stability per category: rows per stability bin."""
    plt = plotting()
    labels = list(summary["all"]["bins"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(CATEGORIES)
    for n, cat in enumerate(CATEGORIES):
        counts = [summary[cat]["bins"][b] for b in labels]
        ax.bar([x + (n - 1.5) * width for x in range(len(labels))], counts, width, label=cat)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("slick_label_stability (predicted agreement of an independent re-annotation)")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    return _save(fig, out / STABILITY_PNG)


def calibration_plot(calibrated: Mapping, draws: Sequence[Mapping], out: Path) -> str:
    """Left: observed agreement of another draw against predicted stability; right: agreement of two
    draws as prompts grow."""
    plt = plotting()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for name, binned, marker in (
        ("slick_label_stability", calibrated, "o"),
        ("bootstrap of own prompts", calibrated["bootstrap"], "s"),
    ):
        points = [b for b in binned["bins"] if b["predicted"] is not None]
        xs = [b["predicted"] for b in points]
        ys = [b["observed"]["value"] for b in points]
        err = [
            [max(0.0, y - b["observed"]["ci"][0]) for y, b in zip(ys, points, strict=True)],
            [max(0.0, b["observed"]["ci"][1] - y) for y, b in zip(ys, points, strict=True)],
        ]
        left.errorbar(xs, ys, yerr=err, fmt=marker, capsize=3, label=name, alpha=0.85)
        for x, y, b in zip(xs, ys, points, strict=True):
            left.annotate(f"n={b['observed']['n']}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    left.set_xlabel("predicted label stability (bin mean)")
    left.set_ylabel("agreement with another draw")
    left.set_xlim(0, 1.05)
    left.set_ylim(0, 1.05)
    left.legend(fontsize=8, loc="lower right")
    ks = [d["prompts"] for d in draws]
    values = [100 * d["agreement"]["value"] for d in draws]
    low = [100 * d["agreement"]["ci"][0] for d in draws]
    high = [100 * d["agreement"]["ci"][1] for d in draws]
    right.plot(ks, values, marker="o")
    right.fill_between(ks, low, high, alpha=0.2)
    right.axhline(90, color="grey", linestyle=":")
    right.set_xlabel("few-shot prompts per draw (first k)")
    right.set_ylabel("categories equal in two draws (%)")
    return _save(fig, out / CALIBRATION_PNG)
