"""`slick-hf report RUNS_DIR`: the paper's analyses over a folder of runs."""

import json
from collections.abc import Sequence
from pathlib import Path

from slick_hf.cli.parsing import parse
from slick_hf.configs import ReportArguments

HELP = "tables, Equation 1, IDK and plots over a folder of runs (a sweep)"


def main(argv: Sequence[str]) -> None:
    """Write RUNS_DIR/report (or --output-dir) and say which runs were missing or unfinished."""
    from slick_hf.hub import check_writable_dir
    from slick_hf.report.render import write_report

    (args,) = parse((ReportArguments,), argv, "report", positionals=("runs_dir",))
    if args.output_dir:
        check_writable_dir(Path(args.output_dir))
    out = write_report(Path(args.runs_dir), Path(args.output_dir) if args.output_dir else None)
    written = json.loads((out / "report.json").read_text())
    for name in written["missing"]:
        print(f"report: missing run {name}")
    for name in written["incomplete"]:
        print(f"report: unfinished run {name}, left out")
    for name in written["infeasible"]:
        print(f"report: infeasible run {name}, not in the sweep")
    print(f"report: {out / 'README.md'}")
