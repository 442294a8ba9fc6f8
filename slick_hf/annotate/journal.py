"""Resumable annotation: fixed chunks of a dataset, each journaled once finished, then assembled."""

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import pyarrow as pa
from datasets import Dataset, DatasetInfo, Features
from tqdm.auto import tqdm

from slick_hf.annotate.executors import ChunkExecutor, as_executor
from slick_hf.core.evidence import Evidence
from slick_hf.core.predictive import split_stability
from slick_hf.core.schema import CATEGORY_LABEL, EVIDENCE_COLUMNS, ROW_FEATURES, SLICK_FEATURES, STABILITY_COLUMN
from slick_hf.core.slick import SlickConfig, categorize
from slick_hf.data.formats import SKIP_COLUMN
from slick_hf.engines.base import Engine

# examples per chunk: the unit of resumption and of batching; every chunk's annotation ends its greedy call and
# each sampling round with a few small decode steps, so larger chunks amortise them (48 geo examples, bf16:
# 7.5 s in one chunk, 8.3 s as 32 + 16), while a chunk stays seconds of work to redo after an interruption
CHUNK_SIZE = 64

logger = logging.getLogger(__name__)


class ChunkJournal:
    """Append-only record of finished chunks; a torn last line (a kill mid-write) is cut off.

    A complete line that is not JSON, not of the shape `{"chunk": k, "results": [...]}`, or that
    `accept(chunk, results)` rejects (edited, inconsistent) is skipped and counted in `rejected`:
    its chunk is annotated again, and the good lines after it are kept.
    """

    def __init__(self, path: Path, accept: Callable[[int, list], bool] = lambda chunk, results: True) -> None:
        self.path = path
        self.done: dict[int, list[dict]] = {}
        self.rejected = 0
        if path.exists():
            data = path.read_bytes()
            *lines, torn = data.split(b"\n")
            for line in lines:
                try:
                    entry = json.loads(line)
                    chunk, results = entry["chunk"], entry["results"]
                    ok = type(chunk) is int and isinstance(results, list) and accept(chunk, results)
                except (ValueError, TypeError, KeyError):
                    ok = False
                if ok:
                    self.done[chunk] = results
                else:
                    self.rejected += 1
            if torn:  # the write of the last line never finished
                with path.open("r+b") as f:
                    f.truncate(len(data) - len(torn))

    def record(self, chunk: int, results: list[dict]) -> None:
        """Append one finished chunk durably (fsync), so a kill never loses or tears it."""
        path_exists = self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"chunk": chunk, "results": results}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if not path_exists:
            fsync_dir(self.path.parent)
        self.done[chunk] = results


def fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (after creating a file in `path`)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def consistent_rows(results: list, config: SlickConfig, n_rows: int) -> bool:
    """Whether journaled results are `n_rows` whole rows whose probabilities and category follow from
    their recorded counts (an edited category or count is not trusted)."""
    if len(results) != n_rows:
        return False
    try:
        for r in results:
            if set(ROW_FEATURES) - set(r):
                return False
            p_greedy = r["slick_greedy_correct"] / config.num_prompts
            p_sample = r["slick_samples_correct"] / (config.num_prompts * config.num_samples)
            if (
                abs(r["slick_p_greedy"] - p_greedy) > 1e-9
                or abs(r["slick_p_sample"] - p_sample) > 1e-9
                or r["slick_category"] != categorize(p_greedy, p_sample)
                or r["slick_generations"] != config.num_prompts + r["slick_samples_drawn"]
                or not _consistent_evidence(r, config)
            ):
                return False
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    return True


def _consistent_evidence(r: dict, config: SlickConfig) -> bool:
    """Per-prompt counts that add up to the row's totals."""
    greedy, drawn, correct = (r[name] for name in EVIDENCE_COLUMNS)
    if not len(greedy) == len(drawn) == len(correct) == config.num_prompts:
        return False
    return (sum(greedy), sum(drawn), sum(correct)) == (
        r["slick_greedy_correct"],
        r["slick_samples_drawn"],
        r["slick_samples_correct"],
    )


def run_fingerprint(
    questions: Dataset, pools: Mapping, config: SlickConfig, engine_info: Mapping, chunk_size: int
) -> str:
    """Identifies one annotation job: same questions, chunks, prompts, parameters and model."""
    # float32 was the only dtype before dtypes were recorded: its journals keep their names. Lower precisions
    # also name the engine's CPU threads: bf16 products split over another number of threads round
    # differently (256 geo examples: 21 categories differ between 1 and 2 threads; float32: none of 128),
    # so a resumed run only continues chunks computed as it computes them.
    model = [engine_info.get("model_id"), engine_info.get("model_revision")]
    if engine_info.get("dtype", "float32") != "float32":
        model += [engine_info["dtype"], *([engine_info["threads"]] if "threads" in engine_info else [])]
    payload = json.dumps(
        {
            "ids": list(questions["id"]),
            "chunk_size": chunk_size,
            "pools": pools,
            "config": config.to_dict(),
            "model": model,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def annotate_dataset(
    questions: Dataset,
    pools: Mapping[str, list],
    engine: Engine | ChunkExecutor,
    config: SlickConfig,
    work_dir: Path,
    chunk_size: int = CHUNK_SIZE,
    desc: str = "SliCK",
) -> Dataset:
    """Add the slick_* columns to `questions`, resuming from `work_dir` where a run stopped.

    Chunks are fixed slices of the rows SliCK judges (all of them, or those not marked
    `slick_skipped`, which get null slick_* values), so a resumed run batches exactly like an
    uninterrupted one and gives the same result. `engine` annotates them here, or an executor
    (`slick_hf.annotate.executors`) hands them to its workers.
    """
    executor = as_executor(engine)
    judged = None
    if SKIP_COLUMN in questions.column_names:
        judged = [i for i, s in enumerate(questions[SKIP_COLUMN][:]) if s is None]
    rows = questions if judged is None else questions.select(judged)
    n_chunks = (len(rows) + chunk_size - 1) // chunk_size

    def accept(k: int, results: list) -> bool:
        return 0 <= k < n_chunks and consistent_rows(results, config, min(chunk_size, len(rows) - k * chunk_size))

    journal = ChunkJournal(
        Path(work_dir) / f"{run_fingerprint(rows, pools, config, executor.info(), chunk_size)}.jsonl", accept
    )
    if journal.rejected:
        logger.warning(
            "%s: %d line(s) unreadable or inconsistent with their recorded counts; their chunks are annotated again",
            journal.path,
            journal.rejected,
        )
    counts: Counter = Counter(r["slick_category"] for rs in journal.done.values() for r in rs)
    pending = (
        (k, rows.select(range(k * chunk_size, min((k + 1) * chunk_size, len(rows)))).to_list())
        for k in range(n_chunks)
        if k not in journal.done
    )
    with tqdm(total=len(rows), desc=desc, unit="ex", initial=sum(map(len, journal.done.values()))) as bar:
        for k, results in executor.annotate_chunks(pending, pools, config):
            journal.record(k, results)
            counts.update(r["slick_category"] for r in results)
            bar.update(len(results))
            bar.set_postfix({c[:6]: counts[c] for c in CATEGORY_LABEL.names})
    ordered = [r for k in range(n_chunks) for r in journal.done[k]]
    columns = {name: [r[name] for r in ordered] for name in ROW_FEATURES}
    evidence = [Evidence.from_row(r) for r in ordered]
    columns[STABILITY_COLUMN] = split_stability(evidence, columns["slick_category"], config.num_samples)[0]
    features = Features({**questions.features, **SLICK_FEATURES})
    done = Dataset.from_dict({**rows.to_dict(), **columns}, features=features)
    if judged is None:
        return done
    table = questions.with_format("arrow")[:]  # the skipped rows back in place, with null slick_* values
    for name in SLICK_FEATURES:
        values: list = [None] * len(questions)
        for i, value in zip(judged, done[name][:], strict=True):
            values[i] = value
        table = table.append_column(name, pa.array(values, type=features.arrow_schema.field(name).type))
    return Dataset(table, info=DatasetInfo(features=features))
