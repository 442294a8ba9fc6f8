"""`slick-hf sweep --config RECIPE.yaml [overrides] [--sweep-*]`: every variant at one |D|, then the report."""

from collections.abc import Sequence

from slick_hf.cli.parsing import parse
from slick_hf.configs import RECIPE_ARGUMENTS, SweepArguments, listed

HELP = "fine-tune every variant (ratios, D_Known, categories, natural, IDK) at one |D|, then report"


def main(argv: Sequence[str]) -> None:
    """Run (or resume) the sweep; --variant and --unknown_ratio are set per run."""
    from slick_hf.sweep import run_sweep

    script, training, model_args, sweep = parse((*RECIPE_ARGUMENTS, SweepArguments), argv, "sweep")
    if sweep.annotate_only:
        from slick_hf.recipe import ensure_annotations

        annotated = ensure_annotations(
            script, model_args.model_name_or_path, training.trust_remote_code, model_args.dtype
        )
        sizes = ", ".join(f"{split} {len(ds)}" for split, ds in annotated.items())
        print(f"sweep: annotated {sizes} in {script.annotations_dir}")
        return
    run_sweep(
        script,
        training,
        model_args,
        ratios=sweep.ratios(),
        only=listed(sweep.sweep_only),
        variants=listed(sweep.sweep_variants),
        relations=listed(sweep.sweep_relations),
        report=not sweep.no_report,
        report_only=sweep.report_only,
        command=" ".join(["slick-hf", "sweep", *argv]),
        keep_weights=sweep.sweep_keep_weights,
        seeds=sweep.sweep_seeds,
    )
