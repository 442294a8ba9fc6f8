"""The run folder: the one contract between its writers (recipe, train, evaluate) and readers (sweep, report).

A run folder is laid out as a Hub model repo and holds:

- `variant/train.parquet`, `variant/summary.json`: the fine-tuning set and its mix;
- `training_dynamics.jsonl`: one row per epoch (dev exact match, Known/Unknown train fit);
- `train_complete.json`: written when training ends (best epoch, log history);
- the EARLY_STOP model at the root and the CONVERGENCE model in `convergence/` (plain model folders;
  where both are the same model, the root's weights files are hard links to `convergence/`'s);
- `results.json`: {stopping point: {split: metrics}}, `predictions_<point>_<split>.jsonl`;
- `run.json` and `README.md` (the model card), written last.

A folder of runs made by `slick-hf sweep` also holds `sweep.json`. Run names are variant names
(`slick_hf.variants.spec.variant_name`), read back with `parse_variant_name`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from slick_hf.errors import SlickError
from slick_hf.variants.plan import plan_names, sweep_plan
from slick_hf.variants.spec import parse_variant_name, split_seed

logger = logging.getLogger(__name__)

STOPPING_POINTS = ("early_stop", "convergence")
POINT_LABEL = {"early_stop": "EARLY_STOP", "convergence": "CONVERGENCE"}
RESULTS_FILE = "results.json"
RUN_FILE = "run.json"
TRAIN_DONE = "train_complete.json"
DYNAMICS_FILE = "training_dynamics.jsonl"
VARIANT_DIR = "variant"
VARIANT_TRAIN = "train.parquet"
VARIANT_SUMMARY = "summary.json"
CONVERGENCE_DIR = "convergence"
SWEEP_FILE = "sweep.json"


def model_dir(run_dir: Path, point: str) -> Path:
    """Where the model of a stopping point lives: the run folder (EARLY_STOP) or `convergence/`."""
    return Path(run_dir) if point == "early_stop" else Path(run_dir) / CONVERGENCE_DIR


def predictions_file(point: str, split: str) -> str:
    """The file name of a stopping point's predictions on a split."""
    return f"predictions_{point}_{split}.jsonl"


def read_results(run_dir: Path) -> dict:
    """results.json of a run folder ({} before any evaluation)."""
    path = Path(run_dir) / RESULTS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def run_is_done(run_dir: Path) -> bool:
    """Trained, evaluated at both stopping points, carded."""
    return (Path(run_dir) / RUN_FILE).exists() and all(p in read_results(run_dir) for p in STOPPING_POINTS)


@dataclass
class Run:
    """One run folder as the report reads it; `problems` says what is missing or unreadable."""

    name: str
    path: Path
    kind: str
    ratio: float | None
    variant: str = ""  # the name without its seed suffix
    seed: int = 0
    results: dict = field(default_factory=dict)
    dynamics: list[dict] = field(default_factory=list)
    train: dict = field(default_factory=dict)  # train_complete.json without log_history
    summary: dict = field(default_factory=dict)  # variant/summary.json
    info: dict = field(default_factory=dict)  # run.json
    problems: list[str] = field(default_factory=list)

    @property
    def evaluated(self) -> bool:
        """Both stopping points evaluated on the in-distribution test."""
        return all(p in self.results and "test" in self.results[p] for p in STOPPING_POINTS)

    @property
    def complete(self) -> bool:
        """Evaluated and recorded: run.json is written last, so a run still being evaluated is not complete."""
        return self.evaluated and bool(self.info)

    def metric(self, point: str, split: str, key: str = "exact_match") -> float | None:
        """A metric in percent (fractions are scaled; counts are not), or None."""
        v = self.results.get(point, {}).get(split, {}).get(key)
        if v is None:
            return None
        return v if key.startswith("count") else 100.0 * v

    @property
    def size(self) -> int | None:
        """|D| of the run's fine-tuning set."""
        if self.summary.get("size") is not None:
            return self.summary["size"]
        return self.dynamics[0].get("train_size") if self.dynamics else None

    @property
    def es_epoch(self) -> float | None:
        """The EARLY_STOP epoch: train_complete.json's best_epoch, else the first best dev epoch."""
        if self.train.get("best_epoch") is not None:
            return float(self.train["best_epoch"])
        rows = [r for r in self.dynamics if r.get("dev_exact_match") is not None]
        if not rows:
            return None
        best = max(r["dev_exact_match"] for r in rows)
        return float(next(r["epoch"] for r in rows if r["dev_exact_match"] == best))

    @property
    def last_epoch(self) -> float | None:
        """The CONVERGENCE epoch (the last one logged)."""
        return max((float(r["epoch"]) for r in self.dynamics), default=None)

    def dynamics_at(self, point: str) -> dict | None:
        """The training-dynamics row of the EARLY_STOP epoch or of the last (CONVERGENCE) epoch."""
        if not self.dynamics:
            return None
        epoch = self.es_epoch if point == "early_stop" else self.last_epoch
        if epoch is None:
            return None
        row = min(self.dynamics, key=lambda r: abs(float(r["epoch"]) - epoch))
        return row if abs(float(row["epoch"]) - epoch) <= 0.5 else None


def _read_json(path: Path, problems: list[str]) -> dict | None:
    """A JSON object, or None when absent; an unreadable one (not UTF-8, not JSON, not an object) is noted."""
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: JSON and UTF-8 decoding errors
        problems.append(f"unreadable {path.name}: {err}")
        return None
    if not isinstance(value, dict):
        problems.append(f"unreadable {path.name}: a JSON {type(value).__name__}, not an object")
        return None
    return value


def _results_shape_ok(results: dict) -> bool:
    """{stopping point: {split: {metric: number or null}}}, as `slick-hf evaluate` and the recipe write it."""
    return all(
        isinstance(splits, dict)
        and all(
            isinstance(m, dict) and all(v is None or isinstance(v, int | float) for v in m.values())
            for m in splits.values()
        )
        for splits in results.values()
    )


def _read_dynamics(path: Path, problems: list[str]) -> list[dict]:
    """training_dynamics.jsonl rows (objects with a numeric epoch); other lines are noted and skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as err:
        problems.append(f"unreadable {path.name}: {err}")
        return []
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            float(row.get("epoch", 0))
            rows.append(row)
        except (ValueError, TypeError, AttributeError):
            problems.append(f"{path.name} line {i} is not a JSON object with a numeric epoch")
    return sorted(rows, key=lambda r: float(r.get("epoch", 0)))


def read_run(path: Path) -> Run:
    """Read a run folder; what is missing or unreadable goes to `Run.problems`, never raises."""
    kind, ratio = parse_variant_name(path.name)
    variant, seed = split_seed(path.name)
    run = Run(path.name, path, kind, ratio, variant, seed)
    run.results = _read_json(path / RESULTS_FILE, run.problems) or {}
    if not _results_shape_ok(run.results):
        run.problems.append(f"unreadable {RESULTS_FILE}: not {{stopping point: {{split: {{metric: number}}}}}}")
        run.results = {}
    train = _read_json(path / TRAIN_DONE, run.problems) or {}
    run.train = {k: v for k, v in train.items() if k != "log_history"}
    run.summary = _read_json(path / VARIANT_DIR / VARIANT_SUMMARY, run.problems) or {}
    run.info = _read_json(path / RUN_FILE, run.problems) or {}
    if not run.summary and run.info.get("variant_summary"):
        run.summary = run.info["variant_summary"]
    if (path / DYNAMICS_FILE).exists():
        run.dynamics = _read_dynamics(path / DYNAMICS_FILE, run.problems)
    if not run.results:
        run.problems.append("no results.json (not evaluated yet)")
    elif not run.evaluated:
        have = ", ".join(f"{p}/{s}" for p, splits in run.results.items() for s in splits)
        run.problems.append(f"results.json incomplete (has {have or 'nothing'})")
    elif not run.info:
        run.problems.append(f"no {RUN_FILE} (still being evaluated, or stopped before its record was written)")
    if not run.dynamics:
        run.problems.append("no training_dynamics.jsonl")
    return run


def is_run_dir(path: Path) -> bool:
    """Whether `path` is a run folder (started, at least)."""
    return path.is_dir() and any((path / f).exists() for f in (RESULTS_FILE, RUN_FILE, DYNAMICS_FILE, VARIANT_DIR))


@dataclass
class RunGroup:
    """The complete runs of one variant over its seeds (`D_unk0.50`, `D_unk0.50-s1`, ...), read as one:
    metrics are means over seeds (per-seed dynamics stay on the runs themselves)."""

    name: str
    runs: list[Run]

    @property
    def kind(self) -> str:
        """The variant kind (ratio, known, idk, a category, natural, other)."""
        return self.runs[0].kind

    @property
    def ratio(self) -> float | None:
        """The Unknown ratio of ratio, known and idk variants."""
        return self.runs[0].ratio

    @property
    def seeds(self) -> list[int]:
        """The seeds of its runs."""
        return [r.seed for r in self.runs]

    @property
    def results(self) -> dict:
        """The first seed's results (question counts are the same for every seed)."""
        return self.runs[0].results

    def values(self, point: str, split: str, key: str = "exact_match") -> list[float] | None:
        """One metric (a fraction) per seed, or None when a seed lacks it."""
        vals = [r.results.get(point, {}).get(split, {}).get(key) for r in self.runs]
        return None if any(v is None for v in vals) else vals

    def metric(self, point: str, split: str, key: str = "exact_match") -> float | None:
        """The mean over seeds, in percent (counts as they are), or None."""
        vals = self.values(point, split, key)
        if vals is None:
            return None
        mean = sum(vals) / len(vals)
        return mean if key.startswith("count") else 100.0 * mean

    @property
    def size(self) -> int | None:
        """|D| of its fine-tuning set (the same for every seed)."""
        return self.runs[0].size


@dataclass
class Runs:
    """A folder of runs (a sweep), with the sweep's plan when it has a sweep.json."""

    folder: Path
    runs: dict[str, Run]
    sweep: dict
    expected: list[str]

    @cached_property
    def groups(self) -> dict[str, RunGroup]:
        """Every variant with a complete run, over its seeds (by variant name, seeds in order)."""
        by_variant: dict[str, list[Run]] = {}
        for run in sorted(self.runs.values(), key=lambda r: (r.variant, r.seed)):
            if run.complete:
                by_variant.setdefault(run.variant, []).append(run)
        return {name: RunGroup(name, runs) for name, runs in by_variant.items()}

    def get(self, name: str) -> RunGroup | None:
        """The complete runs of the named variant over its seeds, or None when it has none."""
        return self.groups.get(name)

    def by_kind(self, kind: str) -> list[RunGroup]:
        """The variants of one kind with complete runs, by Unknown ratio."""
        return sorted((g for g in self.groups.values() if g.kind == kind), key=lambda g: g.ratio or 0.0)

    @property
    def seeds(self) -> list[int]:
        """Every seed a complete run has."""
        return sorted({r.seed for r in self.runs.values() if r.complete})

    def question_count(self, split: str) -> int | None:
        """How many questions the runs' test split `split` has (from the first complete run evaluated on it)."""
        for run in self.runs.values():
            for point in run.results.values() if run.complete else ():
                if point.get(split, {}).get("count"):
                    return int(point[split]["count"])
        return None

    @property
    def size(self) -> int | None:
        """The sweep's |D|: from sweep.json, else the largest train set among the runs."""
        if self.sweep.get("config", {}).get("train_size"):
            return int(self.sweep["config"]["train_size"])
        sizes = [r.size for r in self.runs.values() if r.size]
        return max(sizes) if sizes else None

    @property
    def infeasible(self) -> dict[str, str]:
        """Planned runs the sweep found infeasible, with the reason."""
        return dict(self.sweep.get("infeasible", {}))

    @property
    def missing(self) -> list[str]:
        """Expected runs (the sweep plan, less infeasible ones) that are absent."""
        return [n for n in self.expected if n not in self.runs and split_seed(n)[0] not in self.infeasible]

    @property
    def incomplete(self) -> dict[str, list[str]]:
        """Unfinished runs and what they lack."""
        return {n: r.problems for n, r in self.runs.items() if not r.complete}


def load_runs(folder: Path) -> Runs:
    """Read every run folder under `folder` and its sweep.json."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SlickError(f"no such runs folder: {folder}")
    runs = {p.name: read_run(p) for p in sorted(folder.iterdir()) if is_run_dir(p)}
    if not runs:
        subs = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("sweep-"))
        hint = f"; sweep folders here: {', '.join(subs)}" if subs else ""
        raise SlickError(f"no run folders (with results.json or run.json) in {folder}{hint}")
    sweep = {}
    if (folder / SWEEP_FILE).exists():
        try:
            sweep = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
        except ValueError:  # not JSON or not UTF-8
            logger.warning("unreadable %s", folder / SWEEP_FILE)
    if not isinstance(sweep, dict):
        raise SlickError(
            f"{folder / SWEEP_FILE} holds a JSON {type(sweep).__name__}, not a sweep record (an object); "
            "remove it or run the sweep again to rewrite it"
        )
    expected = list(sweep.get("plan") or plan_names(sweep_plan()))
    return Runs(folder, runs, sweep, expected)
