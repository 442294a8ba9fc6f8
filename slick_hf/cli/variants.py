"""`slick-hf variants SOURCE`: fine-tuning sets (D, D_Known, D_IDK, ...) from an annotated dataset."""

import json
from collections.abc import Sequence
from pathlib import Path

from slick_hf.cli.parsing import parse
from slick_hf.configs import VariantsArguments
from slick_hf.errors import SlickError

HELP = "build fine-tuning sets (D, D_Known, D_IDK, ...) from an annotated dataset"


def main(argv: Sequence[str]) -> None:
    """Write each requested variant as <output-dir>/<name>/train.parquet plus summary.json."""
    from slick_hf.annotate.folder import load_annotated
    from slick_hf.hub import atomic_write_text, check_writable_dir, write_parquet
    from slick_hf.runs import VARIANT_SUMMARY, VARIANT_TRAIN
    from slick_hf.variants import RATIO_VARIANTS, VARIANTS, VariantSpec, build_variant, default_size, variant_summary

    (args,) = parse((VariantsArguments,), argv, "variants", positionals=("source",), dataset_config=True)
    names = list(VARIANTS) if args.variant == "all" else [v.strip() for v in args.variant.split(",") if v.strip()]
    if not names:
        raise SlickError(f"--variant is empty; valid: {', '.join(VARIANTS)}, or all")
    ratios = args.ratios()
    check_writable_dir(Path(args.output_dir))
    pool = load_annotated(args.source, args.dataset_config, args.split)
    size = args.size
    if size is None:
        size = default_size(pool, args.shares, VARIANTS if args.variant == "all" else None)
    specs = [
        VariantSpec(v, x, size, args.shares, args.seed, args.idk_answer)
        for v in names
        for x in (ratios if v in RATIO_VARIANTS else ratios[:1])
    ]
    built = [(spec, build_variant(pool, spec)) for spec in specs]  # every check before any write
    print(f"|D| = {size} (shares {args.shares!r}, seed {args.seed})")
    for spec, ds in built:
        out = Path(args.output_dir) / spec.name
        write_parquet(ds, out / VARIANT_TRAIN)
        summary = {
            "spec": spec.to_dict(),
            "source": args.source,
            "config": args.dataset_config,
            **variant_summary(ds),
        }
        atomic_write_text(out / VARIANT_SUMMARY, json.dumps(summary, indent=2) + "\n")
        print(f"{spec.name}: {len(ds)} rows -> {out}")
