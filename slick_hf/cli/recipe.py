"""`slick-hf recipe --config RECIPE.yaml [overrides]`: annotate, build the variant, fine-tune, evaluate."""

from collections.abc import Sequence

from slick_hf.cli.parsing import parse
from slick_hf.configs import RECIPE_ARGUMENTS, SweepArguments

HELP = "the main job: annotate, build a variant, fine-tune, evaluate (TRL-style YAML + overrides)"


def main(argv: Sequence[str]) -> None:
    """Run (or resume) one recipe. A recipe file may also hold `sweep_*` settings: they are for `slick-hf sweep`."""
    from slick_hf.recipe import run_recipe

    *recipe, _sweep = parse((*RECIPE_ARGUMENTS, SweepArguments), argv, "recipe")
    run_recipe(*recipe)
