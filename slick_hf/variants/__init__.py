"""Fine-tuning sets of the paper from an annotated pool: D at a share of Unknown, D_Known, D_IDK,
single categories, the natural mix; all of one |D| with the relations' shares kept."""

from slick_hf.variants.build import OUTPUT_FEATURES, build_variant, variant_summary
from slick_hf.variants.plan import choose_size, plan_names, sweep_plan
from slick_hf.variants.pool import default_size, pool_counts, relation_quotas
from slick_hf.variants.spec import RATIO_SWEEP, RATIO_VARIANTS, SHARES, VARIANTS, VariantSpec, variant_name

__all__ = [
    "OUTPUT_FEATURES",
    "RATIO_SWEEP",
    "RATIO_VARIANTS",
    "SHARES",
    "VARIANTS",
    "VariantSpec",
    "build_variant",
    "choose_size",
    "default_size",
    "plan_names",
    "pool_counts",
    "relation_quotas",
    "sweep_plan",
    "variant_name",
    "variant_summary",
]
