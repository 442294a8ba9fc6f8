"""The one argument convention of every command: dataclasses parsed by TRL's `TrlParser`.

- `--config FILE.yaml` sets any field; flags after it override (open-r1 recipes work this way).
- Every flag has both spellings, `--output_dir` and `--output-dir` (`HfArgumentParser`).
- Leading positional arguments fill the command's named fields (`slick-hf report RUNS_DIR`).
- Where a command reads an annotated dataset, `--dataset-config NAME` (TRL's name) names its config;
  the old spellings `--config NAME` and `--annotation-config NAME` still work, with a deprecation warning.
- A bad flag or value is a `SlickError`: one line, exit 2, never a usage dump.
"""

import sys
from collections.abc import Sequence

from trl import TrlParser

from slick_hf.errors import SlickError, first_line

YAML_SUFFIXES = (".yaml", ".yml")


class ArgumentParser(TrlParser):
    """`TrlParser` whose errors are `SlickError`s naming the command's --help."""

    def error(self, message: str):
        raise SlickError(f"{message} (see `{self.prog} --help`)")


def _with_positionals(argv: list[str], positionals: Sequence[str]) -> list[str]:
    """Leading arguments that are not flags become `--<field> value`, in the order of `positionals`."""
    out, names = [], list(positionals)
    while argv and names and not argv[0].startswith("-"):
        out += [f"--{names.pop(0)}", argv.pop(0)]
    return out + argv


def _config_flag(argv: list[str], dataset_config: bool) -> list[str]:
    """Keep `--config FILE.yaml`; where a command reads an annotated dataset, `--config NAME` and
    `--annotation-config NAME` (the old spellings) name its config, with a deprecation warning."""
    out = list(argv)
    for i, flag in enumerate(out):
        value = out[i + 1] if i + 1 < len(out) else ""
        if flag == "--config" and value.endswith(YAML_SUFFIXES):
            continue
        if flag == "--config" and not dataset_config:
            raise SlickError(f"--config takes a YAML file (.yaml or .yml), got {value!r}")
        if flag in ("--config", "--annotation-config", "--annotation_config") and dataset_config:
            print(f"slick-hf: warning: {flag} NAME is deprecated here; use --dataset-config NAME", file=sys.stderr)
            out[i] = "--dataset_config"
    return out


def parse(
    types: tuple[type, ...],
    argv: Sequence[str],
    command: str,
    positionals: Sequence[str] = (),
    dataset_config: bool = False,
) -> tuple:
    """Parse `argv` (after the command name) into one instance of each dataclass of `types`."""
    args = _config_flag(_with_positionals(list(argv), positionals), dataset_config)
    parser = ArgumentParser(types, prog=f"slick-hf {command}", allow_abbrev=False)
    try:
        return tuple(parser.parse_args_and_config(args))
    except UnicodeDecodeError:
        raise SlickError("--config is not UTF-8 text: save the YAML file as UTF-8") from None
    except (ValueError, OSError, TypeError) as err:
        raise SlickError(f"bad arguments for `slick-hf {command}`: {first_line(err)}") from None
    except Exception as err:  # the YAML parser raises its own types
        if type(err).__module__.startswith("yaml"):
            raise SlickError(f"bad YAML in --config: {first_line(err)}") from None
        raise
