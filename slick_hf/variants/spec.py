"""Which fine-tuning set to build (`VariantSpec`) and its name, which is also its run folder's name."""

import re
from dataclasses import asdict, dataclass

from slick_hf.core.prompts import DEFAULT_COMPLETION_TEMPLATE, DEFAULT_PROMPT_TEMPLATE
from slick_hf.core.slick import CATEGORIES
from slick_hf.errors import SlickError

VARIANTS = ("ratio", "known", "idk", "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "natural")
RATIO_VARIANTS = ("ratio", "known", "idk")
WHOLE = "whole"  # the annotated set as it is (a `slick-hf filter` output): not one of the paper's variants
SHARES = ("pool", "paper")
RATIO_SWEEP = (0.0, 0.25, 0.5, 0.75, 1.0)
_PROMPT_FIELDS = ("question", "relation", "id")
_COMPLETION_FIELDS = ("answer", "question", "relation", "id")
_SEED_SUFFIX = re.compile(r"-s(?P<seed>\d+)$")
_RATIO_NAME = re.compile(r"^D_(?:(?P<kind>Known|IDK)_)?unk(?P<ratio>\d+(?:\.\d+)?)$")


def _check_template(name: str, template: str, fields: tuple[str, ...]) -> None:
    try:
        template.format(**{f: "x" for f in fields})
    except KeyError as err:
        raise SlickError(
            f"{name} uses unknown field {{{err.args[0]}}}; available: {', '.join('{' + f + '}' for f in fields)}"
        ) from None
    except (ValueError, IndexError) as err:
        raise SlickError(f"{name} {template!r} is not a valid format string: {err}") from None


@dataclass(frozen=True)
class VariantSpec:
    """One fine-tuning set: which variant, its unknown ratio (ratio/known/idk only), |D|, seed, format.

    `size` is |D|, the size of the parent D: D_Known has (1 - unknown_ratio) * size rows.
    `size=None` means `default_size(pool, shares)`.
    """

    variant: str = "ratio"
    unknown_ratio: float = 0.5
    size: int | None = None
    shares: str = "pool"
    seed: int = 0
    idk_answer: str = "I don't know"
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    completion_template: str = DEFAULT_COMPLETION_TEMPLATE

    def __post_init__(self) -> None:
        if self.variant not in (*VARIANTS, WHOLE):
            raise SlickError(f"unknown variant {self.variant!r}; valid: {', '.join((*VARIANTS, WHOLE))}")
        ratio = self.unknown_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
            raise SlickError(f"unknown_ratio must be a number in [0, 1], got {ratio!r}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int)):
            raise SlickError(f"size must be a positive integer or None, got {self.size!r}")
        if self.size is not None and self.size <= 0:
            raise SlickError(f"size |D| must be >= 1, got {self.size}")
        if self.shares not in SHARES:
            raise SlickError(f"unknown shares {self.shares!r}; valid: {', '.join(SHARES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SlickError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.idk_answer, str) or not self.idk_answer.strip():
            raise SlickError("idk_answer must be a non-empty string")
        _check_template("prompt_template", self.prompt_template, _PROMPT_FIELDS)
        _check_template("completion_template", self.completion_template, _COMPLETION_FIELDS)

    @property
    def name(self) -> str:
        """The run's name: the variant's (`variant_name`), then `-s<seed>` for a seed other than 0."""
        return variant_name(self) + (f"-s{self.seed}" if self.seed else "")

    def to_dict(self) -> dict:
        """The spec as a plain dict (recorded in summary.json)."""
        return asdict(self)


def variant_name(spec: VariantSpec | str, unknown_ratio: float | None = None) -> str:
    """A run-directory name: D_unk0.50, D_Known_unk0.50, D_IDK_unk0.50, D_HighlyKnown, D_Natural, D_Whole."""
    if isinstance(spec, VariantSpec):
        variant, ratio = spec.variant, spec.unknown_ratio
    else:
        variant, ratio = spec, 0.5 if unknown_ratio is None else unknown_ratio
    if variant == WHOLE:
        return "D_Whole"
    if variant not in VARIANTS:
        raise SlickError(f"unknown variant {variant!r}; valid: {', '.join((*VARIANTS, WHOLE))}")
    prefix = {"ratio": "D", "known": "D_Known", "idk": "D_IDK"}
    if variant in prefix:
        return f"{prefix[variant]}_unk{ratio:.2f}"
    return "D_Natural" if variant == "natural" else f"D_{variant}"


def split_seed(name: str) -> tuple[str, int]:
    """(variant name, seed) of a run name: `D_unk0.50-s2` -> (`D_unk0.50`, 2); no suffix is seed 0."""
    m = _SEED_SUFFIX.search(name)
    return (name[: m.start()], int(m["seed"])) if m else (name, 0)


def parse_variant_name(name: str) -> tuple[str, float | None]:
    """(variant, unknown ratio) of a name `variant_name` or `VariantSpec.name` made; ("other", None) otherwise."""
    name = split_seed(name)[0]
    m = _RATIO_NAME.match(name)
    if m:
        kind = {"Known": "known", "IDK": "idk", None: "ratio"}[m["kind"]]
        return kind, float(m["ratio"])
    if name in ("D_Natural", "D_Whole"):
        return name[2:].lower(), None
    if name.startswith("D_") and name[2:] in CATEGORIES:
        return name[2:], None
    return "other", None
