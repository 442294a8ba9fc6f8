"""The model card of a run folder, laid out as a Hub model repo (no secrets in it)."""

from collections.abc import Mapping
from pathlib import Path

from slick_hf.core.markdown import markdown_table
from slick_hf.core.slick import CATEGORIES
from slick_hf.evaluate.table import RESULTS_HEADER, results_rows
from slick_hf.hub import atomic_write_text


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
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        base_model=run["base_model"] if "/" in run["base_model"] else None,
        library_name="transformers",
        tags=["slick", "sft", "trl", "hallucination"],
        pipeline_tag="text-generation",
    )
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{render_model_card_text(run)}\n")
    atomic_write_text(Path(run_dir) / "README.md", str(card))
