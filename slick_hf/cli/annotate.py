"""`slick-hf annotate`: questions + a model -> a Hub-style dataset folder with the SliCK columns."""

import sys
from collections.abc import Sequence
from pathlib import Path

from slick_hf.annotate.factory import ExecutorArguments, make_executor
from slick_hf.cli.parsing import parse
from slick_hf.configs import AnnotateArguments, listed
from slick_hf.core.slick import SlickConfig
from slick_hf.data.formats import DataFormat
from slick_hf.engines.factory import EngineArguments

HELP = "label questions with SliCK knowledge categories"


def main(argv: Sequence[str]) -> None:
    """Check the questions, then load the engine and annotate (resumable), then push if asked."""
    from slick_hf.annotate.job import AnnotateJob
    from slick_hf.hub import check_writable_dir, push_folder

    args, engine_args, slick, data_format, executor_args = parse(
        (AnnotateArguments, EngineArguments, SlickConfig, DataFormat, ExecutorArguments), argv, "annotate"
    )
    job = AnnotateJob(
        dataset=args.dataset,
        output_dir=Path(args.output_dir),
        model=args.model,
        splits=listed(args.splits) or [],
        data_dir=Path(args.data_dir) if args.data_dir else None,
        relations=args.relations,
        limit_per_relation=args.limit_per_relation,
        config_name=args.config_name,
        slick=slick,
        chunk_size=args.chunk_size,
        dtype=engine_args.resolved_dtype(),
        data_format=data_format,
    )
    check_writable_dir(Path(args.output_dir))
    job.inputs  # noqa: B018 - load and check the questions before any model or server is touched
    executor = make_executor(args.model, engine_args, executor_args)
    try:
        with executor:
            out = job.run(executor)
    finally:
        engine = getattr(executor, "engine", None)  # the local executor's: its request statistics
        stats = getattr(engine, "stats", None)
        if hasattr(stats, "summary"):
            print(f"{engine.name} engine: {stats.summary()}", file=sys.stderr)
    print(f"annotated dataset: {out}")
    if args.push_to_hub:
        print(f"pushed: {push_folder(out, args.push_to_hub, 'dataset')}")
