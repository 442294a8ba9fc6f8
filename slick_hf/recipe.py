"""The main job: annotate what is missing, build the variant, fine-tune, evaluate, report.

Every stage leaves a marker in the run folder, so a re-run skips what is finished.
"""

import json
import logging
import os
import shutil
from pathlib import Path

from datasets import Dataset, DatasetDict

from .annotate_job import AnnotateJob
from .errors import SlickError
from .hub import atomic_write_text, config_name_for
from .recipe_args import SlickScriptArguments, SlickSFTConfig
from .slick import SlickConfig
from .variants import VariantSpec, build_variant, load_annotated, variant_name, variant_summary

logger = logging.getLogger(__name__)
STOPPING_POINTS = ("early_stop", "convergence")


def annotation_jobs(script: SlickScriptArguments, model: str) -> list[AnnotateJob]:
    """One job per annotated split: in-distribution train/dev/test and the OOD test."""
    out_dir = Path(script.annotations_dir or f"outputs/annotations/{script.dataset_name}")
    limits = script.limits()
    slick = SlickConfig(full_sampling=script.annotate_full_sampling)
    jobs = []
    for split, limit in limits.items():
        ood = split == "test_ood"
        if ood and not script.ood_relations:
            continue
        jobs.append(
            AnnotateJob(
                dataset=script.dataset_name,
                output_dir=out_dir,
                model=model,
                splits=["test" if ood else split],
                data_dir=Path(script.data_dir) if script.data_dir else None,
                relations=script.ood_relations if ood else script.relations,
                limit_per_relation=limit,
                config_name=script.annotation_config,
                slick=slick,
                split_suffix="_ood" if ood else "",
            )
        )
    return jobs


def ensure_annotations(script: SlickScriptArguments, model: str, trust_remote_code: bool = False) -> DatasetDict:
    """The annotated splits, annotating with `model` whatever is missing (cached, resumable)."""
    if script.annotated_dataset:
        source, config = script.annotated_dataset, script.annotation_config
    else:
        jobs = annotation_jobs(script, model)
        pending = [j for j in jobs if not j.is_done()]
        if pending and script.dry_run:
            raise SlickError("a dry run does not annotate: annotate first or pass --annotated_dataset")
        if pending and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise SlickError("annotate before a distributed launch (slick-hf annotate), then pass --annotated_dataset")
        if pending:
            from .engines.factory import make_engine

            for job in pending:
                job.inputs  # noqa: B018 - check every job's questions before loading the model
            with make_engine(
                "transformers",
                model,
                batch_size=script.annotate_batch_size,
                trust_remote_code=trust_remote_code,
            ) as engine:
                for job in pending:
                    job.run(engine)
        source = str(jobs[0].output_dir)
        config = script.annotation_config or config_name_for(model)
    return load_annotated(source, config, split=None)


def variant_spec(script: SlickScriptArguments) -> VariantSpec:
    return VariantSpec(
        variant=script.variant,
        unknown_ratio=script.unknown_ratio,
        size=script.train_size,
        seed=script.variant_seed,
        idk_answer=script.idk_answer,
        prompt_template=script.prompt_template,
        completion_template=script.completion_template,
    )


def prepare_variant(pool: Dataset, script: SlickScriptArguments, run_dir: Path) -> Dataset:
    """Build (or reload) the run's fine-tuning set and record its summary."""
    path = run_dir / "variant" / "train.parquet"
    if path.exists():
        return Dataset.from_parquet(str(path))
    train = build_variant(pool, variant_spec(script))
    path.parent.mkdir(parents=True, exist_ok=True)
    train.to_parquet(str(path) + ".tmp")
    Path(str(path) + ".tmp").replace(path)
    atomic_write_text(run_dir / "variant" / "summary.json", json.dumps(variant_summary(train), indent=2))
    return train


def run_dir_for(script: SlickScriptArguments, training: SlickSFTConfig) -> Path:
    return Path(training.output_dir) / variant_name(variant_spec(script))


def read_results(run_dir: Path) -> dict:
    path = run_dir / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def evaluate_checkpoints(run_dir: Path, annotated: DatasetDict, script, training: SlickSFTConfig) -> dict:
    """Per-category exact match of the EARLY_STOP and CONVERGENCE models on the test splits."""
    from .engines.factory import make_engine
    from .evaluate import evaluate_split

    results = read_results(run_dir)
    splits = [s for s in training.evaluate_splits.split(",") if s in annotated]
    for point in STOPPING_POINTS:
        todo = [s for s in splits if s not in results.get(point, {})]
        if not todo:
            continue
        checkpoint = run_dir if point == "early_stop" else run_dir / "convergence"
        with make_engine(
            "transformers", str(checkpoint), batch_size=training.eval_batch_size_generate, device=_device()
        ) as engine:
            for split in todo:
                metrics, preds = evaluate_split(
                    engine,
                    annotated[split],
                    script.prompt_template,
                    training.eval_max_new_tokens,
                    (script.idk_answer,),
                )
                preds.to_json(run_dir / f"predictions_{point}_{split}.jsonl")
                results.setdefault(point, {})[split] = metrics
                atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2))
    return results


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def remove_checkpoints(run_dir: Path) -> None:
    """Drop intermediate `checkpoint-*` folders once both stopping points are saved."""
    for ckpt in run_dir.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)


WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")


def remove_weights(run_dir: Path) -> None:
    """Drop the evaluated models' weights (root and `convergence/`); results and the card stay."""
    for folder in (run_dir, run_dir / "convergence"):
        for pattern in WEIGHT_PATTERNS:
            for path in folder.glob(pattern):
                path.unlink()


def write_model_card(run_dir: Path, run: dict) -> None:
    """README.md of the run folder, laid out as a Hub model repo (no secrets in it)."""
    from huggingface_hub import ModelCard, ModelCardData

    from .cards import render_model_card_text

    data = ModelCardData(
        base_model=run["base_model"] if "/" in run["base_model"] else None,
        library_name="transformers",
        tags=["slick", "sft", "trl", "hallucination"],
        pipeline_tag="text-generation",
    )
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{render_model_card_text(run)}\n")
    atomic_write_text(run_dir / "README.md", str(card))


def print_results(results: dict, summary: dict) -> None:
    """The per-category table on the terminal (rich when available)."""
    from rich.console import Console
    from rich.table import Table

    from .cards import RESULTS_HEADER, results_rows

    console = Console(width=max(Console().width, 130))
    counts = ", ".join(f"{c} {n}" for c, n in summary["categories"].items())
    console.print(f"fine-tuning set: {summary['size']} examples ({counts})")
    table = Table(title="exact match % per SliCK category")
    for h in RESULTS_HEADER:
        table.add_column(h)
    for row in results_rows(results):
        table.add_row(*row)
    console.print(table)


def run_recipe(script: SlickScriptArguments, training: SlickSFTConfig, model_args) -> Path:
    """Annotate -> variant -> train -> evaluate -> card (-> push); each stage skipped when done."""
    from .train import TRAIN_DONE, build_trainer, run_training

    model = model_args.model_name_or_path
    annotated = ensure_annotations(script, model, training.trust_remote_code)
    for split in ("train", "dev"):
        if split not in annotated:
            raise SlickError(f"annotated dataset has no {split!r} split; it has {', '.join(annotated)}")
    run_dir = run_dir_for(script, training)
    train = prepare_variant(annotated["train"], script, run_dir)
    summary = variant_summary(train)
    push_repo = training.hub_model_id if training.push_to_hub else None
    training.output_dir, training.push_to_hub = str(run_dir), False
    training.run_name = training.run_name or run_dir.name
    if script.dry_run or not (run_dir / TRAIN_DONE).exists():
        trainer = build_trainer(train, annotated["dev"], script, training, model_args)
        if script.dry_run:
            print(f"dry run: trainer built for {run_dir} ({len(train)} examples); nothing trained")
            return run_dir
        run_training(trainer, run_dir)
        if not trainer.is_world_process_zero():
            return run_dir
        del trainer
    training_summary = json.loads((run_dir / TRAIN_DONE).read_text())
    results = evaluate_checkpoints(run_dir, annotated, script, training)
    remove_checkpoints(run_dir)
    run = {
        "run_name": run_dir.name,
        "base_model": model,
        "variant": run_dir.name,
        "variant_summary": summary,
        "annotated_dataset": script.annotated_dataset or script.annotations_dir or script.dataset_name,
        "annotation_config": script.annotation_config or config_name_for(model),
        "training": {k: v for k, v in training_summary.items() if k != "log_history"},
        "results": results,
        "weights_kept": script.keep_weights,
    }
    write_model_card(run_dir, run)
    atomic_write_text(run_dir / "run.json", json.dumps(run, indent=2))
    print_results(results, summary)
    if push_repo:
        from .hub import push_folder

        print(f"pushed: {push_folder(run_dir, push_repo, 'model', ignore=['checkpoint-*/**', 'variant/**'])}")
    if not script.keep_weights:
        remove_weights(run_dir)
    return run_dir
