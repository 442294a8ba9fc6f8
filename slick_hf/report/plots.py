"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from slick_hf.report.analysis import SPLIT_LABEL, SPLITS, Eq1Fit, estimate, known_vs_d, run_order
from slick_hf.report.stats import Estimate
from slick_hf.runs import POINT_LABEL, STOPPING_POINTS, Runs

DPI = 100


def plotting():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plotting().close(fig)


def _error_line(ax, points, **style) -> None:
    """Means over seeds with their 95% intervals as error bars (percent)."""
    xs = [x for x, _ in points]
    ys = [100 * e.mean for _, e in points]
    err = [[100 * (e.mean - e.low) for _, e in points], [100 * (e.high - e.mean) for _, e in points]]
    ax.errorbar(xs, ys, yerr=err, capsize=3, **style)


def plot_accuracy_vs_unknown(runs: Runs, path: Path) -> bool:
    """Test accuracy (mean over seeds, 95% interval) against the share of Unknown examples in D and D_Known."""
    d_runs = runs.by_kind("ratio")
    if not d_runs:
        return False
    plt = plotting()
    splits = [s for s in SPLITS if any(r.metric("early_stop", s) is not None for r in d_runs)]
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 3.8), squeeze=False)
    styles = {"early_stop": ("tab:blue", "o"), "convergence": ("tab:red", "s")}
    for ax, split in zip(axes[0], splits, strict=True):
        pairs = known_vs_d(runs, split)
        for p in STOPPING_POINTS:
            color, marker = styles[p]
            dodge = {"early_stop": -0.8, "convergence": 0.8}[p]  # side by side, so the error bars stay apart
            points = [(100 * g.ratio + dodge, e) for g in d_runs if (e := estimate(g, p, split)) is not None]
            _error_line(ax, points, color=color, marker=marker, label=f"D, {POINT_LABEL[p]}")
            known = [
                (100 * r["ratio"] + 2 * dodge, Estimate(**r[f"known_estimate_{p}"]))
                for r in pairs
                if r[f"known_estimate_{p}"] is not None
            ]
            if len(known) > 1:
                _error_line(
                    ax, known, color=color, marker=marker, ls="--", mfc="none", label=f"D_Known, {POINT_LABEL[p]}"
                )
        ax.set_title(SPLIT_LABEL[split])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("% Unknown examples in D")
        ax.set_ylabel("test accuracy (%)")
        ax.set_xticks([100 * r.ratio for r in d_runs])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Test accuracy against the share of Unknown fine-tuning examples")
    fig.tight_layout()
    _save(fig, path)
    return True


def _fit_runs(runs: Runs):
    return [r for r in sorted(runs.runs.values(), key=run_order) if r.dynamics and r.kind != "other"]


def plot_train_fit(runs: Runs, path: Path) -> bool:
    """Known and Unknown train fit per epoch, one panel per run; False if no dynamics."""
    chosen = [
        r
        for r in _fit_runs(runs)
        if any(row.get("train_fit_known") is not None or row.get("train_fit_unknown") is not None for row in r.dynamics)
    ]
    if not chosen:
        return False
    plt = plotting()
    ncols = min(4, len(chosen))
    nrows = -(-len(chosen) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.7 * nrows), squeeze=False, sharey=True)
    for ax in axes.flat[len(chosen) :]:
        ax.axis("off")
    for ax, run in zip(axes.flat, chosen, strict=False):
        epochs = [float(row["epoch"]) for row in run.dynamics]
        for key, color, label in (
            ("train_fit_known", "tab:green", "Known"),
            ("train_fit_unknown", "tab:purple", "Unknown"),
        ):
            ys = [None if row.get(key) is None else 100 * row[key] for row in run.dynamics]
            if any(y is not None for y in ys):
                ax.plot(epochs, [float("nan") if y is None else y for y in ys], marker=".", color=color, label=label)
        if run.es_epoch is not None:
            ax.axvline(run.es_epoch, color="gray", ls=":", lw=1)
        ax.set_title(run.name, fontsize=9)
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("train examples fitted (%)", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("epoch", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat:
        h, l_ = ax.get_legend_handles_labels()
        if len(h) > len(handles):
            handles, labels = h, l_
    fig.suptitle("Training dynamics: Known and Unknown train examples fitted per epoch (dotted: EARLY_STOP)")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=2)
    _save(fig, path)
    return True


def plot_dev_accuracy(runs: Runs, path: Path) -> bool:
    """Dev accuracy per epoch, EARLY_STOP marked; False if no dynamics."""
    chosen = _fit_runs(runs)
    if not chosen:
        return False
    plt = plotting()
    groups = [
        ("D by % Unknown", [r for r in chosen if r.kind == "ratio"]),
        ("D_Known", [r for r in chosen if r.kind == "known"]),
        ("single category, natural, IDK", [r for r in chosen if r.kind not in ("ratio", "known")]),
    ]
    groups = [(t, g) for t, g in groups if g]
    fig, axes = plt.subplots(1, len(groups), figsize=(4.6 * len(groups), 3.6), squeeze=False, sharey=True)
    for ax, (title, group) in zip(axes[0], groups, strict=True):
        cmap = plt.get_cmap("viridis" if title.startswith("D") else "tab10")
        variants = list(dict.fromkeys(r.variant for r in group))  # one colour and one legend entry per variant
        seeds = {v: sum(r.variant == v for r in group) for v in variants}
        labelled: set[str] = set()
        for run in group:
            i = variants.index(run.variant)
            color = cmap(i / max(len(variants) - 1, 1)) if title.startswith("D") else cmap(i)
            xs = [float(row["epoch"]) for row in run.dynamics]
            ys = [100 * row["dev_exact_match"] for row in run.dynamics]
            label = (
                None
                if run.variant in labelled
                else f"{run.variant} ({seeds[run.variant]} seed{'s' if seeds[run.variant] > 1 else ''})"
            )
            labelled.add(run.variant)
            ax.plot(xs, ys, color=color, label=label, lw=1.2, alpha=0.85)
            es = run.es_epoch
            if es is not None:
                k = min(range(len(xs)), key=lambda j: abs(xs[j] - es))
                ax.plot([xs[k]], [ys[k]], "o", color=color)
        ax.set_title(title)
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("dev accuracy (%)")
    fig.suptitle("Dev accuracy per epoch, one line per run, one colour per variant (dot: EARLY_STOP)")
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_equation1(fits: list[Eq1Fit], path: Path) -> bool:
    """Equation 1 fitted against observed accuracy; False if nothing was fitted."""
    fits = [f for f in fits if f.fit is not None]
    if not fits:
        return False
    import numpy as np

    plt = plotting()
    fig, axes = plt.subplots(1, len(fits), figsize=(4.2 * len(fits), 3.8), squeeze=False)
    for ax, f in zip(axes[0], fits, strict=True):
        b0, bk, bu = f.fit.coef
        obs = np.array([p["accuracy"] for p in f.points])
        pred = (
            b0 + bk * np.array([p["known_fit"] for p in f.points]) + bu * np.array([p["unknown_fit"] for p in f.points])
        )
        share = np.array([p["unknown_fit"] for p in f.points])
        sc = ax.scatter(pred, obs, c=share, cmap="plasma", s=18)
        lo, hi = float(min(obs.min(), pred.min())), float(max(obs.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="gray", lw=1, ls="--")
        r2 = "–" if f.fit.r2 is None else f"{f.fit.r2:.2f}"
        ax.set_title(f"{f.label}: b_kn {bk:.1f}, b_unk {bu:.1f}, R² {r2}", fontsize=9)
        ax.set_xlabel("Equation 1 prediction (%)")
        ax.set_ylabel("observed accuracy (%)")
        ax.grid(alpha=0.3)
        fig.colorbar(sc, ax=ax, label="N_unk / |D|")
    fig.suptitle("Equation 1 fits (test: 2 points per run; dev: every epoch)")
    fig.tight_layout()
    _save(fig, path)
    return True


def write_plots(runs: Runs, fits: list[Eq1Fit], out: Path) -> list[str]:
    """Write every plot the runs support; returns the file names written."""
    written = []
    for name, make in (
        ("accuracy_vs_unknown.png", lambda p: plot_accuracy_vs_unknown(runs, p)),
        ("train_fit.png", lambda p: plot_train_fit(runs, p)),
        ("dev_accuracy.png", lambda p: plot_dev_accuracy(runs, p)),
        ("equation1.png", lambda p: plot_equation1(fits, p)),
    ):
        path = out / name
        if make(path):
            written.append(name)
        else:
            path.unlink(missing_ok=True)
    return written
