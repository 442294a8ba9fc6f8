"""The model card of a run folder, laid out as a Hub model repo (no secrets in it).

Its YAML is `huggingface_hub`'s `ModelCardData`, as TRL writes it: `base_model` (a Hub id, never a
local path), `datasets`, `model_name`, and `eval_results` (the `model-index`): the EARLY_STOP model's
exact match on each evaluated split, over all questions and per SliCK category.
"""

from collections.abc import Mapping
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from slick_hf.core.markdown import markdown_table
from slick_hf.core.slick import CATEGORIES
from slick_hf.evaluate.table import RESULTS_HEADER, results_rows
from slick_hf.hub import atomic_write_text, is_hub_id
from slick_hf.models import hub_model_id

TASK_TYPE = "question-answering"
TASK_NAME = "Closed-book question answering"
SPLIT_NAMES = {"test": "in-distribution test", "test_ood": "out-of-distribution test", "dev": "dev"}
CARD_TAGS = ["slick", "sft", "trl", "hallucination"]


def card_datasets(run: Mapping) -> list[str]:
    """The card's `datasets`: the annotated dataset when it is a Hub id, else the source dataset it was
    annotated from (`source_dataset`) when that is no local path; empty when neither is."""
    for name in (run.get("annotated_dataset"), run.get("source_dataset")):
        if name and is_hub_id(str(name)):
            return [str(name)]
    return []


def metric_name(category: str | None) -> str:
    """The name of one exact-match entry: over all questions (`None`) or one SliCK category's."""
    return f"EARLY_STOP exact match (%), {category or 'all'} questions"


def eval_results(run: Mapping) -> list[EvalResult]:
    """The EARLY_STOP model's exact match (%) per evaluated split: over all questions and per SliCK
    category (a category no test question falls in has no entry). Entries of one split share their
    task and dataset, so `huggingface_hub` writes them as one `model-index` result with several metrics."""
    datasets = card_datasets(run)
    dataset_id = datasets[0] if datasets else Path(str(run["annotated_dataset"])).name
    config = run.get("annotation_config")
    named = f"{dataset_id} ({config})" if config else dataset_id
    out = []
    for split, metrics in run["results"].get("early_stop", {}).items():
        values = {None: metrics.get("exact_match")} | {c: metrics.get(f"exact_match_{c}") for c in CATEGORIES}
        out += [
            EvalResult(
                task_type=TASK_TYPE,
                task_name=TASK_NAME,
                dataset_type=dataset_id,
                dataset_name=f"{named}, {SPLIT_NAMES.get(split, split)}",
                dataset_config=config,
                dataset_split=split,
                metric_type="exact_match",
                metric_name=metric_name(category),
                metric_value=round(100 * value, 2),
            )
            for category, value in values.items()
            if value is not None
        ]
    return out


def model_card_data(run: Mapping) -> ModelCardData:
    """The card's YAML: base model, datasets, name and evaluation results of a run."""
    return ModelCardData(
        base_model=hub_model_id(run["base_model"]),
        datasets=card_datasets(run) or None,
        model_name=run["run_name"],
        eval_results=eval_results(run) or None,
        metrics=["exact_match"],
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=CARD_TAGS,
    )


def render_model_card_text(run: Mapping) -> str:
    """The body of a fine-tuned model's card: what it was trained on and how it scores."""
    summary = run["variant_summary"]
    lines = [
        f"# {run['run_name']}",
        "",
        f"`{run['base_model']}` fine-tuned with TRL's SFTTrainer on the SliCK variant "
        f"**{run['variant']}** ({summary['size']} examples) of `{run['annotated_dataset']}` "
        f"(config `{run['annotation_config']}`), made with slick-hf to measure how new knowledge "
        "in fine-tuning data affects hallucination (Gekhman et al. 2024, arXiv:2405.05904).",
        "",
        "## Training set",
        "",
        markdown_table(["category", "examples"], [[c, summary["categories"].get(c, 0)] for c in CATEGORIES]),
        "",
        f"Best dev epoch (EARLY_STOP): {run['training'].get('best_epoch')}; "
        f"trained for {run['training'].get('epochs')} epochs (CONVERGENCE, in `convergence/`). "
        + (
            "The weights at the root of this repository are the EARLY_STOP model."
            if run.get("weights_kept", True)
            else "The weights were not kept (`keep_weights: false`): this folder holds the results, "
            "the predictions and the training dynamics."
        ),
        "",
        "## Results (exact match %, per SliCK category of the test question)",
        "",
        markdown_table(RESULTS_HEADER, results_rows(run["results"])),
    ]
    return "\n".join(lines)


def write_model_card(run_dir: Path, run: Mapping) -> None:
    """README.md of the run folder, laid out as a Hub model repo (no secrets in it)."""
    card = ModelCard(f"---\n{model_card_data(run).to_yaml()}\n---\n{render_model_card_text(run)}\n")
    atomic_write_text(Path(run_dir) / "README.md", str(card))
