"""`slick-hf stability ANNOTATED`: how firm each SliCK label is, what budget the labels need, and how
another annotation of the same rows compares."""

from collections.abc import Sequence
from pathlib import Path

from slick_hf.cli.parsing import parse
from slick_hf.configs import StabilityArguments, listed
from slick_hf.errors import SlickError

HELP = "label stability, the generations labels need, and another annotation of the same rows beside"


def read_labelled(source: str, config: str, splits: Sequence[str] | None):
    """The judged rows of one annotation config (its splits, or those named) with its metadata."""
    from slick_hf.annotate.folder import load_annotated
    from slick_hf.cli.filter import annotation_meta
    from slick_hf.stability.saturation import labelled_rows

    meta = annotation_meta(source, config)
    annotated = load_annotated(source, config, split=None)
    missing = [s for s in splits or () if s not in annotated]
    if missing:
        raise SlickError(f"{source} config {config!r} has no split {', '.join(missing)}; it has {', '.join(annotated)}")
    if splits:
        annotated = {s: annotated[s] for s in splits}
    return labelled_rows(annotated, meta, f"{source} ({config})")


def main(argv: Sequence[str]) -> None:
    """Read the annotation(s), write the report folder, print the recommendation."""
    import json

    from slick_hf.cli.filter import only_config
    from slick_hf.hub import check_writable_dir
    from slick_hf.stability.compare import shared_indices
    from slick_hf.stability.render import REPORT_JSON, pct, write_stability_report

    (args,) = parse((StabilityArguments,), argv, "stability", positionals=("source",), dataset_config=True)
    splits = listed(args.splits)
    config = args.dataset_config or only_config(args.source)
    rows = read_labelled(args.source, config, splits)
    other = None
    if args.compare:
        other = read_labelled(args.compare, args.compare_config or config, splits)
        shared_indices(rows, other)  # the same questions, or one error line before anything is written
    check_writable_dir(Path(args.output_dir))
    out = write_stability_report(rows, other, Path(args.output_dir), args.target)
    record = json.loads((out / REPORT_JSON).read_text())
    rec = record["recommendation"]
    print(
        f"stability: {record['rows']} rows; cheapest budget agreeing >= {100 * rec['target']:.0f}% with the full "
        f"one: {rec['flags']} ({pct(rec['agreement'])}, {100 * rec['saved']:.0f}% of the generations saved)"
    )
    if other is not None:
        comp = record["compare"]
        print(f"stability: {comp['flips']} of {comp['shared_rows']} shared rows flip ({comp['edge_flips']} edge cases)")
    print(f"stability: {out / 'README.md'}")
