"""`slick-hf <stage>`: the command line, with one clear error line on bad input."""

import argparse
import errno
import logging
import sys
from pathlib import Path

from .errors import SlickError
from .report import add_report_parser
from .sweep import add_sweep_parser
from .variants import add_variants_parser


def _add_annotate(sub) -> None:
    p = sub.add_parser("annotate", help="label questions with SliCK knowledge categories")
    p.add_argument("--model", default="smollm2-135m", help="Hub id, local folder, or smollm2-135m")
    p.add_argument("--dataset", default="geo", help="geo, entityquestions, or a dataset folder / Hub id")
    p.add_argument("--data-dir", type=Path, help="EntityQuestions folder (else the official zip is downloaded)")
    p.add_argument("--splits", default="train,dev,test")
    p.add_argument("--relations", help="comma-separated ids or a set: in_distribution, out_of_distribution, all")
    p.add_argument("--limit-per-relation", type=int)
    p.add_argument("--output-dir", type=Path, default=Path("outputs/annotations"))
    p.add_argument("--config-name", help="dataset config name (default: from the model)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the folder as a Hub dataset")
    p.add_argument("--engine", default="transformers", help="transformers (in process), tgi, or openai")
    p.add_argument("--endpoint", action="append", default=[], help="server URL (repeatable)")
    p.add_argument("--concurrency", type=int, help="server engines: HTTP requests in flight (default 16)")
    p.add_argument("--max-retries", type=int, help="server engines: retries per request (default 6)")
    p.add_argument(
        "--retry-budget",
        type=float,
        help="server engines: seconds one request may keep retrying (default 300)",
    )
    p.add_argument("--request-timeout", type=float, help="server engines: seconds per HTTP request (default 120)")
    p.add_argument(
        "--startup-timeout",
        type=float,
        help="server engines: seconds to wait for a server to be up (default 60)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="prompts decoded together")
    p.add_argument("--chunk-size", type=int, default=32, help="examples per resumable chunk")
    p.add_argument("--device", default="cpu")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--num-prompts", type=int, default=10)
    p.add_argument("--num-shots", type=int, default=4)
    p.add_argument("--num-samples", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--full-sampling", action="store_true", help="draw all samples (exact P(T>0))")
    p.set_defaults(func=_annotate)


def _annotate(args) -> None:
    from .annotate_job import AnnotateJob
    from .engines.factory import make_engine
    from .hub import push_folder
    from .slick import SlickConfig

    slick = SlickConfig(
        num_prompts=args.num_prompts,
        num_shots=args.num_shots,
        num_samples=args.num_samples,
        temperature=args.temperature,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        full_sampling=args.full_sampling,
    )
    job = AnnotateJob(
        dataset=args.dataset,
        output_dir=args.output_dir,
        model=args.model,
        splits=[s for s in args.splits.split(",") if s],
        data_dir=args.data_dir,
        relations=args.relations,
        limit_per_relation=args.limit_per_relation,
        config_name=args.config_name,
        slick=slick,
        chunk_size=args.chunk_size,
    )
    job.inputs  # noqa: B018 - load and check the questions before any model or server is touched
    engine = make_engine(
        args.engine,
        args.model,
        args.endpoint,
        args.batch_size,
        args.device,
        args.trust_remote_code,
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        retry_budget=args.retry_budget,
        request_timeout=args.request_timeout,
        startup_timeout=args.startup_timeout,
    )
    try:
        with engine:
            out = job.run(engine)
    finally:
        stats = getattr(engine, "stats", None)
        if hasattr(stats, "summary"):
            print(f"{engine.name} engine: {stats.summary()}", file=sys.stderr)
    print(f"annotated dataset: {out}")
    if args.push_to_hub:
        print(f"pushed: {push_folder(out, args.push_to_hub, 'dataset')}")


def _add_push(sub) -> None:
    p = sub.add_parser("push", help="upload a folder laid out as a Hub repo")
    p.add_argument("folder", type=Path)
    p.add_argument("repo_id")
    p.add_argument("--repo-type", choices=["dataset", "model"], default="dataset")
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=_push)


def _push(args) -> None:
    from .hub import push_folder

    if not args.folder.is_dir():
        raise SlickError(f"no such folder: {args.folder}")
    print(f"pushed: {push_folder(args.folder, args.repo_id, args.repo_type, args.private)}")


def _add_recipe(sub) -> None:
    p = sub.add_parser(
        "recipe",
        help="the main job: annotate, build a variant, fine-tune, evaluate (TRL-style YAML + overrides)",
        add_help=False,
    )
    p.set_defaults(func=_recipe, passthrough=True)


def _recipe(args) -> None:
    from trl import ModelConfig, TrlParser

    from .recipe import run_recipe
    from .recipe_args import SlickScriptArguments, SlickSFTConfig

    parser = TrlParser((SlickScriptArguments, SlickSFTConfig, ModelConfig))
    try:
        script, training, model_args = parser.parse_args_and_config(args.rest)
    except (ValueError, OSError) as err:
        raise SlickError(f"bad recipe: {str(err).splitlines()[0]}") from None
    run_recipe(script, training, model_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slick-hf", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_annotate, _add_push, _add_recipe, add_variants_parser, add_sweep_parser, add_report_parser):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a stage; SlickError -> one line on stderr and exit 2."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        args.func(args)
    except SlickError as err:
        print(f"slick-hf: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slick-hf: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as err:
        if not _disk_full(err):
            raise
        print(
            "slick-hf: error: no space left on device; free some space and run the same command again to "
            "resume (finished stages and runs are kept)",
            file=sys.stderr,
        )
        return 2
    return 0


def _disk_full(err: BaseException | None) -> bool:
    """True when `err`, or an exception it was raised from or while handling, is ENOSPC."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        err = err.__cause__ or err.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
