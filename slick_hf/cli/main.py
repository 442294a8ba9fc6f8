"""`slick-hf <command>`: run a pipeline stage; bad input is one `slick-hf: error: ...` line and exit 2.

`datasets`' own progress bars ("Generating train split", "Map") are off unless `-v`: they would
otherwise come before an error line; slick-hf's annotation and training progress bars stay.
"""

import errno
import logging
import sys
from collections.abc import Sequence

from slick_hf import __version__
from slick_hf.cli import annotate, evaluate, filter, push, recipe, report, stability, sweep, variants
from slick_hf.errors import SlickError

COMMANDS = {
    "annotate": annotate,
    "variants": variants,
    "filter": filter,
    "recipe": recipe,
    "sweep": sweep,
    "evaluate": evaluate,
    "report": report,
    "stability": stability,
    "push": push,
}
USAGE = "usage: slick-hf [-v] {" + ",".join(COMMANDS) + "} [--config FILE.yaml] [flags]"


def _help() -> str:
    lines = [USAGE, "", __doc__.splitlines()[0], "", "commands:"]
    lines += [f"  {name:<10} {module.HELP}" for name, module in COMMANDS.items()]
    lines += ["", "`slick-hf COMMAND --help` lists a command's flags (each as --snake_case or --kebab-case)."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; SlickError -> one line on stderr and exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args[:1])
    args = args[1:] if verbose else args
    if not args or args[0] in ("-h", "--help"):
        print(_help())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"slick-hf {__version__}")
        return 0
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    if not verbose:
        import datasets

        datasets.disable_progress_bars()
    try:
        command = COMMANDS.get(args[0])
        if command is None:
            raise SlickError(f"unknown command {args[0]!r}; choose one of {', '.join(COMMANDS)}")
        command.main(args[1:])
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
