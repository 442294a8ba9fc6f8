"""`slick-hf sweep`: fine-tune every variant of the paper on one annotated pool, at one |D|, then report.

The plan (`sweep_plan`): D at 0, 25, 50, 75, 100 % Unknown; D_Known at 25, 50, 75 % (D_Known at 0 %
is D itself, at 100 % it is empty); D_HighlyKnown, D_MaybeKnown, D_WeaklyKnown, D_Unknown;
D_Natural; D_IDK at 50 %. Every run goes through `run_recipe`, so a run already finished is skipped
and an interrupted one resumes.

One |D| for all runs (`choose_size`): the recipe's `train_size` when every planned variant is
feasible at it, else `default_size(pool, variants=...)`, the largest |D| at which they all are.
A variant that no |D| supports (e.g. a relation without WeaklyKnown rows) is named, skipped, and
the others go on. Runs live in `<output_dir>/sweep-D<|D|>-ep<epochs>/`, next to `sweep.json`
(the plan, the configuration, the status and time of every run) and `report/`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shutil
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from slick_hf.distributed import is_main_process
from slick_hf.errors import SlickError
from slick_hf.hub import atomic_write_text
from slick_hf.runs import SWEEP_FILE, run_is_done
from slick_hf.variants.plan import choose_size, plan_names, sweep_plan
from slick_hf.variants.spec import RATIO_SWEEP, VARIANTS, variant_name

logger = logging.getLogger(__name__)
# Settings that must match for runs to share a sweep folder.
_FINGERPRINT_KEYS = (
    "model",
    "dataset_name",
    "annotations",
    "train_size",
    "epochs",
    "learning_rate",
    "seed",
    "variant_seed",
    "variant_shares",
    "use_peft",
    "train_relations",
)


def filter_pool(annotated, relations: Sequence[str]):
    """The annotated splits with the train split restricted to `relations` (dev and test untouched)."""
    have = sorted(set(annotated["train"]["relation"][:]))
    unknown = sorted(set(relations) - set(have))
    if unknown:
        raise SlickError(f"--sweep-relations: {', '.join(unknown)} not in the train split; it has {', '.join(have)}")
    keep = set(relations)
    train = annotated["train"]
    rows = [i for i, r in enumerate(train["relation"][:]) if r in keep]
    out = dict(annotated)
    out["train"] = train.select(rows)
    return out


def write_pool(annotated: dict, folder: Path, config: str, source: str, relations: Sequence[str]) -> Path:
    """Write the filtered annotated splits as a Hub-style dataset folder the recipe can load."""
    from datasets import DatasetDict

    from slick_hf.annotate.card import category_stats, render_annotation_section
    from slick_hf.hub import META_FILE, write_dataset_repo

    original = Path(source) / config / META_FILE
    meta = json.loads(original.read_text()) if original.exists() else {}
    meta.setdefault("model", {"model_id": config})
    meta.setdefault("slick", {"full_sampling": False})
    meta.setdefault("exemplars", {})
    dataset = dict(meta.get("dataset", {"source": source}))
    dataset["report"] = (
        f"Train split restricted to relations {', '.join(relations)} by `slick-hf sweep --sweep-relations` "
        f"(from {source}); dev and test splits unchanged."
    )
    dataset["relations"] = sorted(set().union(*(set(ds["relation"][:]) for ds in annotated.values())))
    meta["dataset"] = dataset
    meta["splits"] = {s: category_stats(ds) for s, ds in annotated.items()}
    shutil.rmtree(folder, ignore_errors=True)
    write_dataset_repo(folder, config, DatasetDict(annotated), meta, render_annotation_section)
    return folder


def sweep_dir_for(training, size: int, relations: Sequence[str] | None = None) -> Path:
    name = f"sweep-D{size}-ep{float(training.num_train_epochs):g}"
    if relations:
        name += "-" + "+".join(sorted(relations))
    return Path(training.output_dir) / name


def fingerprint(script, training, model_args, size: int, relations: Sequence[str] | None = None) -> dict:
    return {
        "train_relations": sorted(relations) if relations else "all",
        "model": model_args.model_name_or_path,
        "dataset_name": script.dataset_name,
        "annotations": script.annotated_dataset or script.annotations_dir or script.dataset_name,
        "train_size": size,
        "epochs": float(training.num_train_epochs),
        "learning_rate": float(training.learning_rate),
        "seed": training.seed,
        "variant_seed": script.variant_seed,
        "variant_shares": script.variant_shares,
        "use_peft": bool(getattr(model_args, "use_peft", False)),
    }


def _read_sweep(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _check_fingerprint(old: dict, new: dict, folder: Path) -> None:
    diff = [
        f"{k} {old.get(k)!r} there, {new.get(k)!r} now"
        for k in _FINGERPRINT_KEYS
        if k in old and old.get(k) != new.get(k)
    ]
    if diff:
        raise SlickError(
            f"{folder} holds a sweep made with other settings ({'; '.join(diff)}); "
            "its runs would be reused as if they matched. Pass --output_dir elsewhere, or remove that folder"
        )


def _seeded(script, variant: str, ratio: float, seed: int):
    """The recipe arguments of one planned run at seed offset `seed`."""
    return dataclasses.replace(script, variant=variant, unknown_ratio=ratio, variant_seed=script.variant_seed + seed)


def run_sweep(
    script,
    training,
    model_args,
    ratios: Sequence[float] = RATIO_SWEEP,
    only: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    relations: Sequence[str] | None = None,
    report: bool = True,
    report_only: bool = False,
    command: str | None = None,
    keep_weights: bool = False,
    seeds: int = 1,
) -> Path:
    """Run (or resume) the sweep; write the report. Returns the sweep folder.

    `ratios` and `variants` (kinds) make the plan, and |D| is chosen over the whole plan; `only`
    then runs a subset of it (same folder). `relations` restricts the train split D is drawn from.
    Each run's weights are dropped once it is evaluated unless `keep_weights` (the report needs
    none of them, and they are about twice the model's size per run). `seeds` runs each variant that
    many times, seed k drawing D with `variant_seed + k` and training with `seed + k` (run names
    `D_unk0.50`, `D_unk0.50-s1`, ...); the report gives means over seeds with their intervals.
    """
    from slick_hf.hub import config_name_for
    from slick_hf.recipe import annotation_dtype, annotation_jobs, ensure_annotations, run_recipe

    model = model_args.model_name_or_path
    if report_only and not script.annotated_dataset:
        jobs = annotation_jobs(script, model, annotation_dtype(model_args.dtype))
        pending = [j for j in jobs if not j.is_done()]
        if pending:
            raise SlickError(
                "nothing to report: the annotations of this recipe are not there yet (run `make sweep` first, "
                "or `slick-hf report RUNS_DIR` on a sweep folder)"
            )
    annotated = ensure_annotations(script, model, training.trust_remote_code, model_args.dtype)
    if "train" not in annotated:
        raise SlickError(f"annotated dataset has no 'train' split; it has {', '.join(annotated)}")
    if relations:
        annotated = filter_pool(annotated, relations)
    plan = sweep_plan(ratios, kinds=variants)
    # |D| comes from the whole plan, so --sweep-only runs land in the same folder as the full sweep.
    size, runnable, infeasible, how = choose_size(annotated["train"], script.variant_spec(), plan)
    if only:
        wanted = set(only)
        unknown = wanted - set(plan_names(plan)) - set(VARIANTS)
        if unknown:
            raise SlickError(
                f"--sweep-only: unknown run(s) {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(plan_names(plan))} or a variant kind ({', '.join(VARIANTS)})"
            )
        runnable = [(v, x) for v, x in runnable if variant_name(v, x) in wanted or v in wanted]
    folder = sweep_dir_for(training, size, relations)
    if report_only:
        if not folder.is_dir():
            raise SlickError(f"nothing to report: no sweep folder {folder} (run the sweep first)")
        return _write_report(folder)

    path = folder / SWEEP_FILE
    state = _read_sweep(path)
    fp = fingerprint(script, training, model_args, size, relations)
    _check_fingerprint(state.get("config", {}), fp, folder)
    state |= {
        "config": fp,
        "size_rule": how,
        "seeds": seeds,
        "infeasible": infeasible,
        "command": command or state.get("command"),
    }
    state.setdefault("runs", {})
    base_script = script
    if relations:
        source = script.annotated_dataset or script.annotations_dir or f"outputs/annotations/{script.dataset_name}"
        config = script.annotation_config or config_name_for(model)
        pool_dir = write_pool(annotated, folder / "pool", config, source, relations)
        base_script = dataclasses.replace(script, annotated_dataset=str(pool_dir), annotation_config=config)
        print(f"sweep: D drawn from the train relations {', '.join(relations)} only (pool: {pool_dir})")
    print(f"sweep: |D| = {size} ({how}); {len(runnable)} run(s) in {folder}")
    for name, reason in infeasible.items():
        print(f"sweep: SKIPPED {name}: infeasible: {reason}")
    started = time.time()

    def save() -> None:
        if is_main_process():
            atomic_write_text(path, json.dumps(state, indent=2) + "\n")

    todo = [
        (seed, dataclasses.replace(_seeded(base_script, v, x, seed), train_size=size, keep_weights=keep_weights))
        for seed in range(seeds)
        for v, x in runnable
    ]
    state["plan"] = [run_script.variant_spec().name for _, run_script in todo]
    save()
    failed = []
    for k, (seed, run_script) in enumerate(todo, 1):
        name = run_script.variant_spec().name
        run_dir = folder / name
        if run_is_done(run_dir):
            print(f"sweep [{k}/{len(todo)}] {name}: already done")
            state["runs"].setdefault(name, {"status": "done"})
            continue
        print(f"sweep [{k}/{len(todo)}] {name}: running")
        t0 = time.time()
        run_training = copy.deepcopy(training)
        run_training.output_dir = str(folder)
        run_training.run_name = None
        run_training.seed = training.seed + seed
        try:
            run_recipe(run_script, run_training, copy.deepcopy(model_args))
        except KeyboardInterrupt:
            state["runs"][name] = {"status": "interrupted", "seconds": round(time.time() - t0, 1)}
            save()
            raise
        except Exception as err:  # one failed run must not lose the others
            logger.error("%s failed:\n%s", name, traceback.format_exc())
            state["runs"][name] = {"status": "failed", "error": f"{type(err).__name__}: {err}"[:2000]}
            failed.append(name)
        else:
            state["runs"][name] = {"status": "done", "seconds": round(time.time() - t0, 1)}
        save()
        print(f"sweep [{k}/{len(todo)}] {name}: {state['runs'][name]['status']} in {time.time() - t0:.0f} s")
    state["last_sweep_seconds"] = round(time.time() - started, 1)
    save()
    print(f"sweep: finished in {time.time() - started:.0f} s")
    if script.dry_run:
        return folder
    if report and is_main_process():
        _write_report(folder)
    if infeasible:
        print(f"sweep: infeasible, not run: {', '.join(infeasible)}")
    if failed:
        raise SlickError(f"sweep: {len(failed)} run(s) failed: {', '.join(failed)} (see the log above; rerun to retry)")
    return folder


def _write_report(folder: Path) -> Path:
    from slick_hf.report.render import write_report

    out = write_report(folder, folder / "report")
    print(f"report: {out / 'README.md'}")
    return folder
