"""The arguments of a recipe: one flat YAML parsed by `TrlParser` into three dataclasses."""

from dataclasses import dataclass, field

from trl import ModelConfig, SFTConfig


@dataclass
class SlickScriptArguments:
    """Data, annotation and variant arguments of a recipe."""

    dataset_name: str = field(default="geo", metadata={"help": "geo, entityquestions, or a questions dataset"})
    data_dir: str | None = field(default=None, metadata={"help": "EntityQuestions folder (else the zip URL)"})
    annotations_dir: str | None = field(
        default=None,
        metadata={"help": "Hub-style annotated dataset folder (default outputs/annotations/<dataset>)"},
    )
    annotated_dataset: str | None = field(
        default=None, metadata={"help": "an already annotated dataset (folder or Hub id): skips annotation"}
    )
    annotation_config: str | None = field(default=None, metadata={"help": "its config (default: from the model)"})
    relations: str = field(default="in_distribution", metadata={"help": "in-distribution relations"})
    ood_relations: str | None = field(default="out_of_distribution", metadata={"help": "OOD test relations"})
    annotate_limits: str = field(
        default="train=100,dev=10,test=20,test_ood=20",
        metadata={"help": "examples per relation to annotate, per split (test_ood: the OOD test)"},
    )
    annotate_full_sampling: bool = field(default=False, metadata={"help": "draw all SliCK samples"})
    annotate_batch_size: int = field(default=64, metadata={"help": "prompts the annotation engine decodes together"})
    variant: str = field(default="ratio", metadata={"help": "ratio, known, idk, natural or a category name"})
    unknown_ratio: float = field(default=0.5, metadata={"help": "share of Unknown examples in D"})
    train_size: int | None = field(default=None, metadata={"help": "|D| (default: largest feasible for all ratios)"})
    variant_seed: int = field(default=0, metadata={"help": "seed of the variant draw"})
    idk_answer: str = field(default="I don't know", metadata={"help": "the D_IDK answer"})
    prompt_template: str = field(default="Answer the following question. {question}\n")
    completion_template: str = field(default="{answer}")
    dry_run: bool = field(default=False, metadata={"help": "parse and build everything, train nothing"})
    keep_weights: bool = field(
        default=True,
        metadata={
            "help": "keep the EARLY_STOP and CONVERGENCE weights in the run folder once evaluated "
            "(false keeps results, predictions, dynamics and the card: `slick-hf sweep` default)"
        },
    )

    def limits(self) -> dict[str, int]:
        """`annotate_limits` as a dict: split -> examples per relation."""
        out = {}
        for part in filter(None, (p.strip() for p in self.annotate_limits.split(","))):
            split, _, n = part.partition("=")
            out[split.strip()] = int(n)
        return out


@dataclass
class SlickSFTConfig(SFTConfig):
    """TRL's SFTConfig plus the per-epoch generation metrics that drive early stopping."""

    eval_max_new_tokens: int = field(default=24, metadata={"help": "max tokens of a generated answer"})
    eval_batch_size_generate: int = field(default=32, metadata={"help": "batch size of dev/train-fit generation"})
    track_train_fit: bool = field(
        default=True,
        metadata={"help": "every epoch, measure which train examples the model fits (Known/Unknown)"},
    )
    dev_limit: int | None = field(default=None, metadata={"help": "dev examples used for eval_exact_match"})
    evaluate_splits: str = field(default="test,test_ood", metadata={"help": "annotated splits to evaluate after"})


RecipeArgs = tuple[SlickScriptArguments, SlickSFTConfig, ModelConfig]
