"""The main job, thin like open-r1's sft.py: annotate what is missing, build the variant, fine-tune,
evaluate both stopping points, write the card.

Every stage leaves its files in the run folder (`slick_hf.runs`), so a re-run skips what is finished.
"""

import json
import logging
import shutil
from pathlib import Path

from datasets import Dataset, DatasetDict

from slick_hf.annotate.folder import load_annotated
from slick_hf.annotate.job import AnnotateJob
from slick_hf.configs import SlickScriptArguments, SlickSFTConfig
from slick_hf.distributed import is_main_process, world_size
from slick_hf.engines.factory import EngineArguments
from slick_hf.errors import SlickError
from slick_hf.hub import META_FILE, atomic_write_text, config_name_for, write_parquet
from slick_hf.memory import phase_peak, release_freed_memory
from slick_hf.runs import (
    CONVERGENCE_DIR,
    RESULTS_FILE,
    RUN_FILE,
    STOPPING_POINTS,
    TRAIN_DONE,
    VARIANT_DIR,
    VARIANT_SUMMARY,
    VARIANT_TRAIN,
    model_dir,
    predictions_file,
    read_results,
)
from slick_hf.train.model_files import clear_weights
from slick_hf.variants.build import build_variant, variant_summary

logger = logging.getLogger(__name__)


def annotation_jobs(script: SlickScriptArguments, model: str, dtype: str) -> list[AnnotateJob]:
    """One job per annotated split (in-distribution train/dev/test and the OOD test), computed in `dtype`
    (resolved: `bfloat16`, `float32`, or `server` behind inference servers)."""
    out_dir = Path(script.annotations_dir or f"outputs/annotations/{script.dataset_name}")
    limits = script.limits()
    slick = script.slick_config()
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
                dtype=dtype,
                data_format=script.data_format(),
            )
        )
    return jobs


def annotation_dtype(dtype: str | None = "auto") -> str:
    """What this recipe's annotation computes in: `dtype` (auto when unset) resolved for the in-process engine."""
    return EngineArguments(dtype=dtype or "auto").resolved_dtype()


def ensure_annotations(
    script: SlickScriptArguments, model: str, trust_remote_code: bool = False, dtype: str | None = "auto"
) -> DatasetDict:
    """The annotated splits, annotating with `model` in `dtype` whatever is missing (cached, resumable)."""
    engine_args = EngineArguments(
        batch_size=script.annotate_batch_size, trust_remote_code=trust_remote_code, dtype=dtype or "auto"
    )
    if script.annotated_dataset:
        source, config = script.annotated_dataset, script.annotation_config
    else:
        jobs = annotation_jobs(script, model, annotation_dtype(dtype))
        pending = [j for j in jobs if not j.is_done()]
        if pending and script.dry_run:
            raise SlickError("a dry run does not annotate: annotate first or pass --annotated_dataset")
        if pending and world_size() > 1:
            raise SlickError("annotate before a distributed launch (slick-hf annotate), then pass --annotated_dataset")
        if pending:
            from slick_hf.engines.factory import make_engine

            for job in pending:
                job.inputs  # noqa: B018 - check every job's questions before loading the model
            with make_engine(model, engine_args) as engine:
                for job in pending:
                    job.run(engine)
        source = str(jobs[0].output_dir)
        config = script.annotation_config or config_name_for(model)
    return load_annotated(source, config, split=None)


def prepare_variant(pool: Dataset, script: SlickScriptArguments, run_dir: Path) -> Dataset:
    """Build (or reload) the run's fine-tuning set and record its summary."""
    path = run_dir / VARIANT_DIR / VARIANT_TRAIN
    if path.exists():
        return Dataset.from_parquet(str(path))
    train = build_variant(pool, script.variant_spec())
    write_parquet(train, path)
    atomic_write_text(run_dir / VARIANT_DIR / VARIANT_SUMMARY, json.dumps(variant_summary(train), indent=2))
    return train


def run_dir_for(script: SlickScriptArguments, training: SlickSFTConfig) -> Path:
    """The run folder: `output_dir/<variant name>`."""
    return Path(training.output_dir) / script.variant_spec().name


def evaluate_checkpoints(
    run_dir: Path, annotated: DatasetDict, script, training: SlickSFTConfig, dtype: str | None = "auto"
) -> dict:
    """Per-category exact match of the EARLY_STOP and CONVERGENCE models on the test splits."""
    from slick_hf.engines.factory import make_engine
    from slick_hf.evaluate.scoring import evaluate_split

    results = read_results(run_dir)
    splits = [s for s in training.evaluate_splits.split(",") if s in annotated]
    engine_args = EngineArguments(batch_size=training.eval_batch_size_generate, device=_device(), dtype=dtype or "auto")
    for point in STOPPING_POINTS:
        todo = [s for s in splits if s not in results.get(point, {})]
        if not todo:
            continue
        with make_engine(str(model_dir(run_dir, point)), engine_args) as engine:
            for split in todo:
                metrics, preds = evaluate_split(
                    engine,
                    annotated[split],
                    script.prompt_template,
                    training.eval_max_new_tokens,
                    (script.idk_answer,),
                )
                preds.to_json(run_dir / predictions_file(point, split))
                results.setdefault(point, {})[split] = metrics
                atomic_write_text(run_dir / RESULTS_FILE, json.dumps(results, indent=2))
    return results


def _device() -> str:
    """cuda when there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def remove_checkpoints(run_dir: Path) -> None:
    """Drop intermediate `checkpoint-*` folders once both stopping points are saved."""
    for ckpt in run_dir.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)


def remove_weights(run_dir: Path) -> None:
    """Drop the evaluated models' weights (root and `convergence/`); results and the card stay."""
    for folder in (run_dir, run_dir / CONVERGENCE_DIR):
        clear_weights(folder)


def source_dataset(script: SlickScriptArguments, config: str) -> str | None:
    """The questions the annotated dataset was made from: `dataset_name` when the recipe annotates,
    else the source a local annotated folder records (None for a Hub dataset, which names itself)."""
    if not script.annotated_dataset:
        return script.dataset_name
    try:
        meta = json.loads((Path(script.annotated_dataset) / config / META_FILE).read_text(encoding="utf-8"))
        return str(meta["dataset"]["source"])
    except (OSError, ValueError, KeyError, TypeError):  # a Hub id, or metadata without a recorded source
        return None


def run_recipe(script: SlickScriptArguments, training: SlickSFTConfig, model_args) -> Path:
    """Annotate -> variant -> train -> evaluate -> card (-> push); each stage skipped when done."""
    from slick_hf.evaluate.table import print_results
    from slick_hf.train.card import write_model_card
    from slick_hf.train.run import run_training
    from slick_hf.train.trainer import build_trainer

    model = model_args.model_name_or_path
    memory: dict = {}
    with phase_peak("annotate", memory):
        annotated = ensure_annotations(script, model, training.trust_remote_code, model_args.dtype)
        release_freed_memory()  # the annotation engine's weights and caches, before training starts
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
        with phase_peak("train", memory):
            trainer = build_trainer(train, annotated["dev"], script, training, model_args)
            if script.dry_run:
                print(f"dry run: trainer built for {run_dir} ({len(train)} examples); nothing trained")
                return run_dir
            run_training(trainer, run_dir)
            if not is_main_process():
                return run_dir
            del trainer
            release_freed_memory()
    training_summary = json.loads((run_dir / TRAIN_DONE).read_text())
    with phase_peak("evaluate", memory):
        results = evaluate_checkpoints(run_dir, annotated, script, training, model_args.dtype)
    remove_checkpoints(run_dir)
    config = script.annotation_config or config_name_for(model)
    run = {
        "run_name": run_dir.name,
        "base_model": model,
        "variant": run_dir.name,
        "variant_summary": summary,
        "annotated_dataset": script.annotated_dataset or script.annotations_dir or script.dataset_name,
        "source_dataset": source_dataset(script, config),
        "annotation_config": config,
        "training": {k: v for k, v in training_summary.items() if k != "log_history"},
        "results": results,
        "weights_kept": script.keep_weights,
        "memory": memory,
    }
    write_model_card(run_dir, run)
    atomic_write_text(run_dir / RUN_FILE, json.dumps(run, indent=2))
    print_results(results, summary)
    peaks = ", ".join(f"{name} {m['peak_rss_gb']:.2f} GB in {m['seconds']:.0f} s" for name, m in memory.items())
    print(f"peak memory (resident) and wall time per phase: {peaks}")
    if push_repo:
        from slick_hf.hub import push_folder

        print(f"pushed: {push_folder(run_dir, push_repo, 'model', ignore=['checkpoint-*/**', 'variant/**'])}")
    if not script.keep_weights:
        remove_weights(run_dir)
    return run_dir
