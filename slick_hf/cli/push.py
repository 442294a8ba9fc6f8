"""`slick-hf push FOLDER REPO_ID`: upload a folder laid out as a Hub repo."""

from collections.abc import Sequence
from pathlib import Path

from slick_hf.cli.parsing import parse
from slick_hf.configs import PushArguments

HELP = "upload a folder laid out as a Hub repo (dataset, model, or the metric as a Space)"


def main(argv: Sequence[str]) -> None:
    """Upload; on failure the folder stays and the error line says how to retry."""
    from slick_hf.hub import push_folder

    (args,) = parse((PushArguments,), argv, "push", positionals=("folder", "repo_id"))
    print(f"pushed: {push_folder(Path(args.folder), args.repo_id, args.repo_type, args.private)}")
