"""`slick-hf sweep`: fine-tune every variant of SPEC.md on one annotated pool, at one |D|, then report.

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

import argparse
import copy
import dataclasses
import json
import logging
import os
import shutil
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import SlickError
from .hub import atomic_write_text
from .slick import CATEGORIES, KNOWN
from .variants import RATIO_SWEEP, VARIANTS, build_variant, default_size, variant_name

logger = logging.getLogger(__name__)
SWEEP_FILE = "sweep.json"
IDK_RATIO = 0.5
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
    "use_peft",
    "train_relations",
)


def sweep_plan(
    ratios: Sequence[float] = RATIO_SWEEP, idk_ratio: float = IDK_RATIO, kinds: Iterable[str] | None = None
) -> list[tuple[str, float]]:
    """(variant, unknown_ratio) of every run of the sweep, in run order; `kinds` keeps only those variants."""
    plan = [("ratio", float(x)) for x in ratios]
    plan += [("known", float(x)) for x in ratios if 0 < x < 1]
    plan += [(c, 0.5) for c in CATEGORIES] + [("natural", 0.5), ("idk", float(idk_ratio))]
    if kinds is not None:
        kinds = set(kinds)
        bad = kinds - set(VARIANTS)
        if bad:
            raise SlickError(f"unknown variant kind(s) {', '.join(sorted(bad))}; valid: {', '.join(VARIANTS)}")
        plan = [(v, x) for v, x in plan if v in kinds]
    return plan


def plan_names(plan: Iterable[tuple[str, float]]) -> list[str]:
    return [variant_name(v, x) for v, x in plan]


def infeasible_at(pool, script, plan: Sequence[tuple[str, float]], size: int) -> dict[str, str]:
    """Run name -> why it cannot be built at |D| = size (empty when every run can)."""
    from .recipe import variant_spec

    out = {}
    for v, x in plan:
        try:
            build_variant(pool, variant_spec(dataclasses.replace(script, variant=v, unknown_ratio=x, train_size=size)))
        except SlickError as err:
            out[variant_name(v, x)] = str(err)
    return out


def _categories(pool) -> list[str]:
    feature = pool.features["slick_category"]
    values = pool["slick_category"][:]
    return [feature.names[v] for v in values] if hasattr(feature, "names") else list(values)


def lacking_relations(pool, kinds: Iterable[str]) -> dict[str, list[str]]:
    """Variant kind -> the relations of the pool without the rows it needs (Known and Unknown, or a category)."""
    counts: dict[str, Counter] = {}
    for rel, cat in zip(pool["relation"][:], _categories(pool), strict=True):
        counts.setdefault(rel, Counter())[cat] += 1
        counts[rel]["Known" if cat in KNOWN else "Unknown*"] += 1
    need = {"ratio": ("Known", "Unknown*"), "known": ("Known", "Unknown*"), "idk": ("Known", "Unknown*")}
    out = {}
    for kind in kinds:
        groups = need.get(kind, () if kind == "natural" else (kind,))
        missing = sorted(r for r, c in counts.items() if any(c[g] == 0 for g in groups))
        if missing:
            out[kind] = missing
    return out


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

    from .cards import category_stats, render_annotation_section
    from .hub import META_FILE, write_dataset_repo

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


def choose_size(
    pool, script, plan: Sequence[tuple[str, float]]
) -> tuple[int, list[tuple[str, float]], dict[str, str], str]:
    """(|D|, runnable plan, {infeasible run: reason}, how |D| was chosen).

    A variant kind that no |D| supports on this pool is named and dropped first; then |D| is the
    given train_size when every remaining run is feasible at it, else the largest common |D|.
    """
    kinds = list(dict.fromkeys(v for v, _ in plan))
    blocked: dict[str, str] = {}
    lacking = lacking_relations(pool, kinds)
    for kind in kinds:
        try:
            default_size(pool, variants=[kind])
        except SlickError as err:
            blocked[kind] = str(err)
            if kind in lacking:
                what = {"ratio": "Known or no Unknown", "known": "Known or no Unknown", "idk": "Known or no Unknown"}
                blocked[kind] = (
                    f"relation(s) {', '.join(lacking[kind])} of the train split have no "
                    f"{what.get(kind, kind)} rows, and every variant keeps each relation's share of D; "
                    "leave them out of D with --sweep-relations to run it"
                )
    usable = [k for k in kinds if k not in blocked]
    if not usable:
        raise SlickError("no planned variant is feasible on this pool: " + "; ".join(blocked.values()))
    runnable = [(v, x) for v, x in plan if v in usable]
    infeasible = {variant_name(v, x): blocked[v] for v, x in plan if v in blocked}
    given = script.train_size
    if given is not None:
        bad = infeasible_at(pool, script, runnable, given)
        if not bad:
            return given, runnable, infeasible, f"train_size {given} (given; every planned variant is feasible)"
        logger.warning("train_size %d is infeasible for %s", given, ", ".join(bad))
    size = default_size(pool, variants=usable)
    infeasible |= infeasible_at(pool, script, runnable, size)  # rounding corner cases
    runnable = [(v, x) for v, x in runnable if variant_name(v, x) not in infeasible]
    how = f"default_size(pool, variants={usable}) = {size}, the largest |D| at which all of them are feasible"
    if given is not None:
        how = f"train_size {given} is infeasible for {', '.join(bad)}; using {how}"
    return size, runnable, infeasible, how


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


def run_is_done(run_dir: Path) -> bool:
    from .recipe import STOPPING_POINTS, read_results

    return (run_dir / "run.json").exists() and all(p in read_results(run_dir) for p in STOPPING_POINTS)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


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
) -> Path:
    """Run (or resume) the sweep; write the report. Returns the sweep folder.

    `ratios` and `variants` (kinds) make the plan, and |D| is chosen over the whole plan; `only`
    then runs a subset of it (same folder). `relations` restricts the train split D is drawn from.
    Each run's weights are dropped once it is evaluated unless `keep_weights` (the report needs
    none of them, and they are about twice the model's size per run).
    """
    from .hub import config_name_for
    from .recipe import annotation_jobs, ensure_annotations, run_recipe

    model = model_args.model_name_or_path
    if report_only and not script.annotated_dataset:
        pending = [j for j in annotation_jobs(script, model) if not j.is_done()]
        if pending:
            raise SlickError(
                "nothing to report: the annotations of this recipe are not there yet (run `make sweep` first, "
                "or `slick-hf report RUNS_DIR` on a sweep folder)"
            )
    annotated = ensure_annotations(script, model, training.trust_remote_code)
    if "train" not in annotated:
        raise SlickError(f"annotated dataset has no 'train' split; it has {', '.join(annotated)}")
    if relations:
        annotated = filter_pool(annotated, relations)
    plan = sweep_plan(ratios, kinds=variants)
    # |D| comes from the whole plan, so --sweep-only runs land in the same folder as the full sweep.
    size, runnable, infeasible, how = choose_size(annotated["train"], script, plan)
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
        "plan": plan_names(plan),
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
        if _is_main_process():
            atomic_write_text(path, json.dumps(state, indent=2) + "\n")

    save()
    failed = []
    for k, (variant, ratio) in enumerate(runnable, 1):
        name = variant_name(variant, ratio)
        run_dir = folder / name
        if run_is_done(run_dir):
            print(f"sweep [{k}/{len(runnable)}] {name}: already done")
            state["runs"].setdefault(name, {"status": "done"})
            continue
        print(f"sweep [{k}/{len(runnable)}] {name}: running")
        t0 = time.time()
        run_script = dataclasses.replace(
            base_script, variant=variant, unknown_ratio=ratio, train_size=size, keep_weights=keep_weights
        )
        run_training = copy.deepcopy(training)
        run_training.output_dir = str(folder)
        run_training.run_name = None
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
        print(f"sweep [{k}/{len(runnable)}] {name}: {state['runs'][name]['status']} in {time.time() - t0:.0f} s")
    state["last_sweep_seconds"] = round(time.time() - started, 1)
    save()
    print(f"sweep: finished in {time.time() - started:.0f} s")
    if script.dry_run:
        return folder
    if report and _is_main_process():
        _write_report(folder)
    if infeasible:
        print(f"sweep: infeasible, not run: {', '.join(infeasible)}")
    if failed:
        raise SlickError(f"sweep: {len(failed)} run(s) failed: {', '.join(failed)} (see the log above; rerun to retry)")
    return folder


def _write_report(folder: Path) -> Path:
    from .report import write_report

    out = write_report(folder, folder / "report")
    print(f"report: {out / 'README.md'}")
    return folder


# ---------------------------------------------------------------------------------------------
# Command line: `slick-hf sweep --config RECIPE [recipe overrides]` (wired in cli.py).


def add_sweep_parser(sub) -> None:
    """Add the `sweep` subcommand; everything it does not know goes to the recipe's TrlParser."""
    p = sub.add_parser(
        "sweep",
        help="fine-tune every variant (ratios, D_Known, categories, natural, IDK) at one |D|, then report",
        description="Same arguments as `slick-hf recipe` (--config YAML and overrides), plus the flags below. "
        "--variant and --unknown_ratio are set per run.",
        allow_abbrev=False,
    )
    p.add_argument("--sweep-ratios", default=",".join(f"{x:g}" for x in RATIO_SWEEP), help="Unknown ratios of D")
    p.add_argument(
        "--sweep-variants",
        help=f"comma-separated variant kinds in the plan (default all: {','.join(VARIANTS)}); |D| is chosen over them",
    )
    p.add_argument(
        "--sweep-relations",
        help="comma-separated train relations D is drawn from (default all; dev and test are not filtered)",
    )
    p.add_argument(
        "--sweep-only", help="run only these (run names such as D_unk0.50, or variant kinds) of the plan, same |D|"
    )
    p.add_argument(
        "--sweep-keep-weights",
        action="store_true",
        help="keep every run's EARLY_STOP and CONVERGENCE weights (default: drop them once evaluated)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--report-only", action="store_true", help="train nothing: (re)write the sweep's report")
    p.set_defaults(func=run_sweep_command, passthrough=True)


def run_sweep_command(args: argparse.Namespace) -> None:
    from trl import ModelConfig, TrlParser

    from .recipe_args import SlickScriptArguments, SlickSFTConfig

    try:
        ratios = [float(x) for x in args.sweep_ratios.split(",") if x.strip()]
    except ValueError:
        raise SlickError(f"--sweep-ratios must be comma-separated numbers, got {args.sweep_ratios!r}") from None
    if not ratios or any(not 0 <= x <= 1 for x in ratios):
        raise SlickError(f"--sweep-ratios must be numbers in [0, 1], got {args.sweep_ratios!r}")
    parser = TrlParser((SlickScriptArguments, SlickSFTConfig, ModelConfig))
    try:
        script, training, model_args = parser.parse_args_and_config(args.rest)
    except (ValueError, OSError) as err:
        raise SlickError(f"bad recipe: {str(err).splitlines()[0]}") from None

    def listed(value: str | None) -> list[str] | None:
        return [s.strip() for s in value.split(",") if s.strip()] or None if value else None

    only = listed(args.sweep_only)
    run_sweep(
        script,
        training,
        model_args,
        ratios=ratios,
        only=only,
        variants=listed(args.sweep_variants),
        relations=listed(args.sweep_relations),
        report=not args.no_report,
        report_only=args.report_only,
        command=" ".join(["slick-hf", "sweep", *args.rest]),
        keep_weights=args.sweep_keep_weights,
    )
