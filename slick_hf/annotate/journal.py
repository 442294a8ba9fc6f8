"""Resumable annotation: fixed chunks of a dataset, each journaled once finished, then assembled."""

import hashlib
import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
from datasets import Dataset, DatasetInfo, Features
from tqdm.auto import tqdm

from slick_hf.annotate.rows import annotate_rows
from slick_hf.core.schema import CATEGORY_LABEL, SLICK_FEATURES
from slick_hf.core.slick import SlickConfig
from slick_hf.data.formats import SKIP_COLUMN
from slick_hf.engines.base import Engine


class ChunkJournal:
    """Append-only record of finished chunks; a torn last line (a kill mid-write) is dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[int, list[dict]] = {}
        if path.exists():
            good = 0
            with path.open("rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        break  # torn: the write of this line never finished
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        break
                    self.done[entry["chunk"]] = entry["results"]
                    good += len(line)
            if good != path.stat().st_size:
                with path.open("r+b") as f:
                    f.truncate(good)

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


def run_fingerprint(
    questions: Dataset, pools: Mapping, config: SlickConfig, engine_info: Mapping, chunk_size: int
) -> str:
    """Identifies one annotation job: same questions, chunks, prompts, parameters and model."""
    payload = json.dumps(
        {
            "ids": list(questions["id"]),
            "chunk_size": chunk_size,
            "pools": pools,
            "config": config.to_dict(),
            # float32 was the only dtype before dtypes were recorded: its journals keep their names
            "model": [engine_info.get("model_id"), engine_info.get("model_revision")]
            + ([engine_info["dtype"]] if engine_info.get("dtype", "float32") != "float32" else []),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def annotate_dataset(
    questions: Dataset,
    pools: Mapping[str, list],
    engine: Engine,
    config: SlickConfig,
    work_dir: Path,
    chunk_size: int = 32,
    desc: str = "SliCK",
) -> Dataset:
    """Add the slick_* columns to `questions`, resuming from `work_dir` where a run stopped.

    Chunks are fixed slices of the dataset, so a resumed run batches exactly like an
    uninterrupted one and gives the same result.
    """
    journal = ChunkJournal(
        Path(work_dir) / f"{run_fingerprint(questions, pools, config, engine.info(), chunk_size)}.jsonl"
    )
    n_chunks = (len(questions) + chunk_size - 1) // chunk_size
    counts: Counter = Counter(r["slick_category"] for rs in journal.done.values() for r in rs)
    with tqdm(total=len(questions), desc=desc, unit="ex", initial=sum(map(len, journal.done.values()))) as bar:
        for k in range(n_chunks):
            if k in journal.done:
                continue
            rows = questions.select(range(k * chunk_size, min((k + 1) * chunk_size, len(questions)))).to_list()
            results = annotate_rows(rows, pools, engine, config)
            journal.record(k, results)
            counts.update(r["slick_category"] for r in results)
            bar.update(len(rows))
            bar.set_postfix({c[:6]: counts[c] for c in CATEGORY_LABEL.names})
    ordered = [r for k in range(n_chunks) for r in journal.done[k]]
    columns = {name: [r[name] for r in ordered] for name in SLICK_FEATURES}
    features = Features({**questions.features, **SLICK_FEATURES})
    return Dataset.from_dict({**questions.to_dict(), **columns}, features=features)


def annotate_judged(
    questions: Dataset,
    pools: Mapping[str, list],
    engine: Engine,
    config: SlickConfig,
    work_dir: Path,
    chunk_size: int = 32,
    desc: str = "SliCK",
) -> Dataset:
    """`annotate_dataset` on the rows not marked `slick_skipped`; the skipped rows get null slick_* values."""
    if SKIP_COLUMN not in questions.column_names:
        return annotate_dataset(questions, pools, engine, config, work_dir, chunk_size, desc)
    judged = [i for i, s in enumerate(questions[SKIP_COLUMN][:]) if s is None]
    done = annotate_dataset(questions.select(judged), pools, engine, config, work_dir, chunk_size, desc)
    features = Features({**questions.features, **SLICK_FEATURES})
    table = questions.with_format("arrow")[:]
    for name in SLICK_FEATURES:
        values: list = [None] * len(questions)
        for i, value in zip(judged, done[name][:], strict=True):
            values[i] = value
        table = table.append_column(name, pa.array(values, type=features.arrow_schema.field(name).type))
    return Dataset(table, info=DatasetInfo(features=features))
