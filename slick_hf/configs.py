"""Every command's arguments: dataclasses with `help` metadata, parsed by `TrlParser` (the engine's and the
executor's live with their factories: `slick_hf.engines.factory`, `slick_hf.annotate.factory`).

One convention for every subcommand (see `slick_hf.cli.main`): `--config FILE.yaml` sets any
field, flags after it override, and each flag has a snake (`--output_dir`) and a kebab
(`--output-dir`) spelling. A recipe is the flat YAML of `SlickScriptArguments`, `SlickSFTConfig`
and TRL's `ModelConfig` (open-r1 style).
"""

from dataclasses import dataclass, field, fields
from pathlib import Path

from trl import ModelConfig, SFTConfig

from slick_hf.annotate.journal import CHUNK_SIZE
from slick_hf.core.prompts import DEFAULT_COMPLETION_TEMPLATE, DEFAULT_PROMPT_TEMPLATE
from slick_hf.core.slick import SlickConfig
from slick_hf.data.formats import DataFormat
from slick_hf.errors import SlickError, check_positive
from slick_hf.hub import check_config_name
from slick_hf.models import check_model
from slick_hf.variants.spec import RATIO_SWEEP, SHARES, VARIANTS, VariantSpec

LIMIT_SPLITS = ("train", "dev", "test", "test_ood")


def _slick_field(name: str):
    """A recipe field for a SliCK parameter, with `SlickConfig`'s default and help (one home for both)."""
    source = SlickConfig.__dataclass_fields__[name]
    return field(default=source.default, metadata={"help": f"SliCK: {source.metadata['help']}"})


@dataclass
class SlickScriptArguments(DataFormat):
    """Data, annotation and variant arguments of a recipe (a user dataset is read with `DataFormat`'s fields)."""

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
    annotate_full_sampling: bool = _slick_field("full_sampling")
    annotate_num_prompts: int = _slick_field("num_prompts")
    annotate_num_shots: int = _slick_field("num_shots")
    annotate_num_samples: int = _slick_field("num_samples")
    annotate_temperature: float = _slick_field("temperature")
    annotate_top_k: int = _slick_field("top_k")
    annotate_max_new_tokens: int = _slick_field("max_new_tokens")
    annotate_seed: int = _slick_field("seed")
    annotate_batch_size: int | None = field(
        default=None, metadata={"help": "prompts the annotation engine decodes together (default: the engine's own)"}
    )
    variant: str = field(
        default="ratio",
        metadata={
            "help": "ratio, known, idk, natural, a category name, or whole (the set as it is: `slick-hf filter`)"
        },
    )
    unknown_ratio: float = field(default=0.5, metadata={"help": "share of Unknown examples in D"})
    train_size: int | None = field(default=None, metadata={"help": "|D| (default: largest feasible for all ratios)"})
    variant_seed: int = field(default=0, metadata={"help": "seed of the variant draw"})
    variant_shares: str = field(
        default="pool",
        metadata={
            "help": "relation shares of D, equal in every variant: pool (each relation's share of the annotated "
            "train split) or paper (its smallest category count, the paper's rule: every variant is feasible "
            "at the sum of them)",
            "choices": list(SHARES),
        },
    )
    idk_answer: str = field(default="I don't know", metadata={"help": "the D_IDK answer"})
    prompt_template: str = field(
        default=DEFAULT_PROMPT_TEMPLATE, metadata={"help": "fine-tuning and evaluation prompt ({question})"}
    )
    completion_template: str = field(default=DEFAULT_COMPLETION_TEMPLATE, metadata={"help": "target ({answer})"})
    dry_run: bool = field(default=False, metadata={"help": "parse and build everything, train nothing"})
    keep_weights: bool = field(
        default=True,
        metadata={
            "help": "keep the EARLY_STOP and CONVERGENCE weights in the run folder once evaluated "
            "(false keeps results, predictions, dynamics and the card: `slick-hf sweep` default)"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.limits()
        self.slick_config()
        self.variant_spec()
        if self.annotate_batch_size is not None:
            check_positive(self, "annotate_batch_size")

    def data_format(self) -> DataFormat:
        """How `dataset_name` is read when it is a user's dataset: the `DataFormat` fields."""
        return DataFormat(**{f.name: getattr(self, f.name) for f in fields(DataFormat)})

    def limits(self) -> dict[str, int]:
        """`annotate_limits` as a dict: split -> examples per relation (each >= 1, splits of LIMIT_SPLITS)."""
        out = {}
        for part in filter(None, (p.strip() for p in self.annotate_limits.split(","))):
            split, _, n = part.partition("=")
            try:
                out[split.strip()] = int(n)
            except ValueError:
                raise SlickError(f"annotate_limits: {part!r} is not SPLIT=N (e.g. train=100,test=20)") from None
            if split.strip() not in LIMIT_SPLITS:
                raise SlickError(f"annotate_limits: unknown split {split.strip()!r}; use {', '.join(LIMIT_SPLITS)}")
            if out[split.strip()] < 1:
                raise SlickError(f"annotate_limits: {part!r} must be >= 1 (leave the split out to skip it)")
        if not out:
            raise SlickError("annotate_limits is empty; e.g. train=100,dev=10,test=20,test_ood=20")
        return out

    def slick_config(self) -> SlickConfig:
        """The SliCK parameters of the recipe's annotation."""
        return SlickConfig(
            num_prompts=self.annotate_num_prompts,
            num_shots=self.annotate_num_shots,
            num_samples=self.annotate_num_samples,
            temperature=self.annotate_temperature,
            top_k=self.annotate_top_k,
            max_new_tokens=self.annotate_max_new_tokens,
            seed=self.annotate_seed,
            full_sampling=self.annotate_full_sampling,
        )

    def variant_spec(self) -> VariantSpec:
        """The fine-tuning set this recipe trains on."""
        return VariantSpec(
            variant=self.variant,
            unknown_ratio=self.unknown_ratio,
            size=self.train_size,
            shares=self.variant_shares,
            seed=self.variant_seed,
            idk_answer=self.idk_answer,
            prompt_template=self.prompt_template,
            completion_template=self.completion_template,
        )


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
    dev_loss: bool = field(
        default=True,
        metadata={
            "help": "also compute the dev loss at each evaluation (a forward pass; exact match is always computed)"
        },
    )
    evaluate_splits: str = field(default="test,test_ood", metadata={"help": "annotated splits to evaluate after"})


RecipeArgs = tuple[SlickScriptArguments, SlickSFTConfig, ModelConfig]
RECIPE_ARGUMENTS = (SlickScriptArguments, SlickSFTConfig, ModelConfig)


@dataclass
class AnnotateArguments:
    """`slick-hf annotate`: label questions with SliCK categories (SliCK parameters: `SlickConfig`)."""

    model: str = field(default="smollm2-135m", metadata={"help": "Hub id, local folder, or smollm2-135m"})
    dataset: str = field(
        default="geo",
        metadata={"help": "geo, entityquestions, or a dataset folder / Hub id (read with --dataset-format)"},
    )
    data_dir: str | None = field(default=None, metadata={"help": "EntityQuestions folder (else the official zip)"})
    splits: str = field(default="train,dev,test", metadata={"help": "comma-separated splits to annotate"})
    relations: str | None = field(
        default=None, metadata={"help": "comma-separated ids or a set: in_distribution, out_of_distribution, all"}
    )
    limit_per_relation: int | None = field(default=None, metadata={"help": "examples per split and relation"})
    output_dir: str = field(default="outputs/annotations", metadata={"help": "the Hub-style dataset folder"})
    config_name: str | None = field(default=None, metadata={"help": "dataset config name (default: from the model)"})
    push_to_hub: str | None = field(default=None, metadata={"help": "REPO_ID: upload the folder as a Hub dataset"})
    chunk_size: int = field(default=CHUNK_SIZE, metadata={"help": "examples per resumable chunk"})

    def __post_init__(self) -> None:
        check_positive(self, "chunk_size", "limit_per_relation")
        check_model(self.model)
        if self.config_name is not None:
            check_config_name(self.config_name)


@dataclass
class VariantsArguments:
    """`slick-hf variants SOURCE`: build fine-tuning sets from an annotated dataset."""

    source: str | None = field(
        default=None, metadata={"help": "annotated dataset: a Hub-style folder or a Hub dataset id"}
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "the annotated dataset's config (one per annotating model)"}
    )
    split: str = field(default="train", metadata={"help": "the annotated split D is drawn from"})
    variant: str = field(default="ratio", metadata={"help": f"comma-separated, from: {', '.join(VARIANTS)}, or all"})
    unknown_ratio: str | None = field(
        default=None,
        metadata={"help": "comma-separated ratios in [0, 1] (default 0.5; with --variant all: 0,.25,.5,.75,1)"},
    )
    size: int | None = field(
        default=None, metadata={"help": "|D| (default: the largest |D| at which every requested variant is feasible)"}
    )
    shares: str = field(default="pool", metadata={"help": "relation shares of D", "choices": list(SHARES)})
    seed: int = field(default=0, metadata={"help": "seed of the variant draw"})
    idk_answer: str = field(default="I don't know", metadata={"help": "the D_IDK answer"})
    output_dir: str = field(default="outputs/variants", metadata={"help": "one folder per variant under it"})

    def __post_init__(self) -> None:
        if not self.source:
            raise SlickError("variants: name the annotated dataset (a folder or Hub id): slick-hf variants SOURCE")
        check_positive(self, "size")

    def ratios(self) -> list[float]:
        """The Unknown ratios asked for."""
        if self.unknown_ratio is None:
            return list(RATIO_SWEEP) if self.variant == "all" else [0.5]
        try:
            ratios = [float(x) for x in self.unknown_ratio.split(",") if x.strip()]
        except ValueError:
            raise SlickError(f"--unknown-ratio must be comma-separated numbers, got {self.unknown_ratio!r}") from None
        if not ratios:
            raise SlickError("--unknown-ratio is empty")
        return ratios


@dataclass
class FilterArguments:
    """`slick-hf filter ANNOTATED`: a user's annotated set in its own schema without its Unknown rows."""

    source: str | None = field(
        default=None, metadata={"help": "annotated user dataset: a Hub-style folder or a Hub id"}
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "the annotated dataset's config (one per annotating model)"}
    )
    splits: str = field(default="train", metadata={"help": "comma-separated annotated splits to filter"})
    drop: str = field(default="Unknown", metadata={"help": "comma-separated SliCK categories to remove"})
    relabel_idk: bool = field(default=False, metadata={"help": "replace their answers by --idk-answer instead"})
    idk_answer: str = field(default="I don't know", metadata={"help": "the answer of relabelled rows"})
    output_dir: str | None = field(default=None, metadata={"help": "the Hub-style folder the filtered set goes to"})
    push_to_hub: str | None = field(default=None, metadata={"help": "REPO_ID: upload the folder as a Hub dataset"})
    min_stability: float = field(
        default=0.0,
        metadata={"help": "drop or relabel only rows whose slick_label_stability is at least this (0: every row)"},
    )

    def __post_init__(self) -> None:
        if not self.source or not self.output_dir:
            raise SlickError(
                "filter: name the annotated dataset and --output-dir: slick-hf filter SOURCE --output-dir OUT"
            )
        if not 0.0 <= self.min_stability <= 1.0:
            raise SlickError(f"filter: --min-stability must lie in [0, 1], got {self.min_stability}")


@dataclass
class StabilityArguments:
    """`slick-hf stability ANNOTATED`: how firm the labels are, what budget they need, another annotation beside."""

    source: str | None = field(default=None, metadata={"help": "annotated dataset: a Hub-style folder or a Hub id"})
    dataset_config: str | None = field(
        default=None, metadata={"help": "the annotated dataset's config (one per annotating model)"}
    )
    compare: str | None = field(
        default=None, metadata={"help": "another annotation of the same rows (other seed, dtype, threads, engine)"}
    )
    compare_config: str | None = field(default=None, metadata={"help": "its config (default: the same name)"})
    splits: str | None = field(default=None, metadata={"help": "comma-separated splits to read (default: all)"})
    target: float = field(default=0.95, metadata={"help": "agreement with the full budget the recommendation needs"})
    output_dir: str | None = field(default=None, metadata={"help": "where README.md, stability.json and the plots go"})

    def __post_init__(self) -> None:
        if not self.source or not self.output_dir:
            raise SlickError(
                "stability: name the annotated dataset and --output-dir: slick-hf stability SOURCE --output-dir OUT"
            )
        if not 0.0 < self.target <= 1.0:
            raise SlickError(f"stability: --target must lie in (0, 1], got {self.target}")


@dataclass
class EvaluateArguments:
    """`slick-hf evaluate`: a model's exact match per SliCK category on annotated test splits."""

    model: str | None = field(default=None, metadata={"help": "a fine-tuned checkpoint: local folder or Hub id"})
    annotated_dataset: str | None = field(default=None, metadata={"help": "annotated dataset: folder or Hub id"})
    dataset_config: str | None = field(
        default=None, metadata={"help": "the annotated dataset's config (one per annotating model)"}
    )
    splits: str = field(default="test", metadata={"help": "comma-separated annotated splits, e.g. test,test_ood"})
    output_dir: str | None = field(
        default=None, metadata={"help": "where results.json and predictions_<split>.jsonl go"}
    )
    prompt_template: str = field(default=DEFAULT_PROMPT_TEMPLATE, metadata={"help": "the prompt ({question})"})
    max_new_tokens: int = field(default=24, metadata={"help": "longest answer, in tokens"})
    idk_answer: str = field(default="I don't know", metadata={"help": "the answer counted as an abstention"})

    def __post_init__(self) -> None:
        for name in ("model", "annotated_dataset", "output_dir"):
            if not getattr(self, name):
                raise SlickError(f"evaluate: --{name.replace('_', '-')} is required")
        check_positive(self, "max_new_tokens")
        check_model(self.model)
        if not listed(self.splits):
            raise SlickError("evaluate: --splits is empty; name annotated splits, e.g. test,test_ood")


@dataclass
class ReportArguments:
    """`slick-hf report RUNS_DIR`: tables, Equation 1, IDK and plots over a folder of runs."""

    runs_dir: str | None = field(default=None, metadata={"help": "a folder of run folders (a sweep)"})
    output_dir: str | None = field(default=None, metadata={"help": "where to write the report (RUNS_DIR/report)"})

    def __post_init__(self) -> None:
        if not self.runs_dir:
            raise SlickError("report: name the folder of runs: slick-hf report RUNS_DIR")


@dataclass
class PushArguments:
    """`slick-hf push FOLDER REPO_ID`: upload a folder laid out as a Hub repo."""

    folder: str | None = field(default=None, metadata={"help": "the folder (a dataset, a run, or the metric's folder)"})
    repo_id: str | None = field(default=None, metadata={"help": "ORG/NAME on the Hub"})
    repo_type: str = field(default="dataset", metadata={"help": "repo type", "choices": ["dataset", "model", "space"]})
    private: bool = field(default=False, metadata={"help": "create the repo private"})

    def __post_init__(self) -> None:
        if not self.folder or not self.repo_id:
            raise SlickError("push: name the folder and the repo: slick-hf push FOLDER REPO_ID")
        if not Path(self.folder).is_dir():
            raise SlickError(f"no such folder: {self.folder}")


@dataclass
class SweepArguments:
    """`slick-hf sweep`: the recipe's arguments plus these; every variant at one |D|, then the report."""

    sweep_ratios: str = field(default=",".join(f"{x:g}" for x in RATIO_SWEEP), metadata={"help": "Unknown ratios of D"})
    sweep_variants: str | None = field(
        default=None, metadata={"help": "comma-separated variant kinds in the plan (default: all)"}
    )
    sweep_relations: str | None = field(
        default=None, metadata={"help": "comma-separated train relations D is drawn from (default all)"}
    )
    sweep_only: str | None = field(
        default=None, metadata={"help": "run only these run names or variant kinds of the plan, same |D|"}
    )
    sweep_keep_weights: bool = field(default=False, metadata={"help": "keep every run's weights"})
    sweep_seeds: int = field(
        default=1,
        metadata={"help": "runs per variant: seed k draws D with variant_seed + k and trains with seed + k"},
    )
    no_report: bool = field(default=False, metadata={"help": "do not write the report at the end"})
    report_only: bool = field(default=False, metadata={"help": "train nothing: (re)write the sweep's report"})
    annotate_only: bool = field(default=False, metadata={"help": "annotate the study's questions, then stop"})

    def __post_init__(self) -> None:
        check_positive(self, "sweep_seeds")
        self.ratios()
        bad = sorted(set(listed(self.sweep_variants) or []) - set(VARIANTS))
        if bad:
            raise SlickError(f"--sweep-variants: unknown kind(s) {', '.join(bad)}; valid: {', '.join(VARIANTS)}")

    def ratios(self) -> list[float]:
        """`sweep_ratios` as numbers in [0, 1]."""
        try:
            ratios = [float(x) for x in self.sweep_ratios.split(",") if x.strip()]
        except ValueError:
            raise SlickError(f"--sweep-ratios must be comma-separated numbers, got {self.sweep_ratios!r}") from None
        if not ratios or any(not 0 <= x <= 1 for x in ratios):
            raise SlickError(f"--sweep-ratios must be numbers in [0, 1], got {self.sweep_ratios!r}")
        return ratios


def listed(value: str | None) -> list[str] | None:
    """A comma-separated value as a list (None when empty)."""
    items = [s.strip() for s in value.split(",") if s.strip()] if value else []
    return items or None
