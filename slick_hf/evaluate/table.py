"""The per-category results table: on the terminal, in model cards, in the evaluate command."""

from collections.abc import Mapping

from slick_hf.core.slick import CATEGORIES


def results_rows(results: Mapping) -> list[list[str]]:
    """One row per (stopping point, split): accuracy overall and per category, in percent."""

    def pct(v) -> str:
        return "–" if v is None else f"{100 * v:.1f}"

    rows = []
    for point, splits in results.items():
        for split, m in splits.items():
            cells = [pct(m.get(f"exact_match_{c}")) + f" (n={m.get(f'count_{c}', 0)})" for c in CATEGORIES]
            rows.append([point, split, pct(m["exact_match"]) + f" (n={m['count']})", *cells, pct(m.get("answered"))])
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
    table = Table(title="exact match % per SliCK category")
    for h in RESULTS_HEADER:
        table.add_column(h)
    for row in results_rows(results):
        table.add_row(*row)
    console.print(table)
