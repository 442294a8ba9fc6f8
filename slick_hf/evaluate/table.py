"""The per-category results table: on the terminal, in model cards, in the evaluate command."""

from collections.abc import Mapping

from slick_hf.core.intervals import proportion_interval
from slick_hf.core.slick import CATEGORIES


def accuracy_cell(accuracy: float | None, n: int) -> str:
    """`41.3 [30.8, 52.6] (n=75)`: an accuracy in percent with its 95% Wilson interval and its n."""
    if accuracy is None or not n:
        return f"– (n={n})"
    low, high = proportion_interval(round(accuracy * n), n)
    return f"{100 * accuracy:.1f} [{100 * low:.1f}, {100 * high:.1f}] (n={n})"


def results_rows(results: Mapping) -> list[list[str]]:
    """One row per (stopping point, split): accuracy overall and per category, in percent, with intervals."""
    rows = []
    for point, splits in results.items():
        for split, m in splits.items():
            cells = [accuracy_cell(m.get(f"exact_match_{c}"), m.get(f"count_{c}", 0)) for c in CATEGORIES]
            answered = "–" if m.get("answered") is None else f"{100 * m['answered']:.1f}"
            rows.append([point, split, accuracy_cell(m["exact_match"], m["count"]), *cells, answered])
    return rows


RESULTS_HEADER = ["stopping point", "split", "Full", *CATEGORIES, "% answered"]


def print_results(results: Mapping, summary: Mapping | None = None) -> None:
    """The per-category table on the terminal; `summary` (a variant's) adds the fine-tuning set's mix."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    if summary is not None:
        counts = ", ".join(f"{c} {n}" for c, n in summary["categories"].items())
        console.print(f"fine-tuning set: {summary['size']} examples ({counts})")
    table = Table(title="exact match % per SliCK category [95% interval] (n questions)")
    for h in RESULTS_HEADER:
        table.add_column(h)
    for row in results_rows(results):
        table.add_row(*row)
    console.print(table)
