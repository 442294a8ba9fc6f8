"""SliCK annotation: Dataset in, Dataset with slick_* columns out; resumable chunk by chunk."""

import hashlib
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from datasets import Dataset, Features, Value
from datasets import Sequence as SequenceFeature
from tqdm.auto import tqdm

from .engines.base import Engine, GenerationRequest
from .prompts import draw_exemplar_pools, exemplars_for, render_prompt
from .schema import CATEGORY_LABEL
from .slick import SlickConfig, categorize, clean_completion, count_correct

SLICK_FEATURES = {
    "slick_category": CATEGORY_LABEL,
    "slick_p_greedy": Value("float64"),
    "slick_p_sample": Value("float64"),
    "slick_greedy_answers": SequenceFeature(Value("string")),
    "slick_greedy_correct": Value("int32"),
    "slick_samples_drawn": Value("int32"),
    "slick_samples_correct": Value("int32"),
    "slick_generations": Value("int32"),
}
SLICK_COLUMN_DOCS = {
    "slick_category": "SliCK category: HighlyKnown, MaybeKnown, WeaklyKnown or Unknown",
    "slick_p_greedy": "P(T=0): share of the greedy answers (one per few-shot prompt) that are correct",
    "slick_p_sample": "P(T>0): correct samples / (prompts x samples per prompt); a lower bound unless "
    "full_sampling is true, since adaptive sampling stops after the round of the first correct sample",
    "slick_greedy_answers": "the greedy answer to each few-shot prompt, in prompt order",
    "slick_greedy_correct": "number of correct greedy answers",
    "slick_samples_drawn": "number of temperature samples drawn for this example",
    "slick_samples_correct": "number of correct samples among those drawn",
    "slick_generations": "generations spent on this example (greedy + samples)",
}


def exemplar_pools_by_relation(
    dev: Dataset, relations: Sequence[str], config: SlickConfig
) -> dict[str, list[list[dict[str, str]]]]:
    """Exemplar sets drawn once per relation from dev, reused for every question of the relation."""
    rows = dev.select_columns(["id", "relation", "question", "answers"]).to_list()
    return {
        rel: draw_exemplar_pools(rows, rel, config.num_prompts, config.num_shots, config.seed)
        for rel in sorted(set(relations))
    }


def request_seed(seed: int, example_id: str, prompt_index: int) -> int:
    """The sampling seed of one (example, prompt): independent of batching and resumption."""
    digest = hashlib.sha256(f"{seed}:{example_id}:{prompt_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def annotate_rows(
    rows: Sequence[Mapping], pools: Mapping[str, list], engine: Engine, config: SlickConfig
) -> list[dict]:
    """SliCK results for a few examples: greedy for every prompt, then the samples that matter."""
    prompts = [
        [
            render_prompt(exemplars_for(pool, row["id"], config.num_shots), row["question"])
            for pool in pools[row["relation"]]
        ]
        for row in rows
    ]
    greedy = engine.generate([GenerationRequest(p, max_new_tokens=config.max_new_tokens) for ps in prompts for p in ps])
    results = []
    for i, row in enumerate(rows):
        answers = [clean_completion(out[0]) for out in greedy[i * config.num_prompts : (i + 1) * config.num_prompts]]
        results.append(
            {
                "slick_greedy_answers": answers,
                "slick_greedy_correct": count_correct(answers, row["answers"]),
                "slick_samples_drawn": 0,
                "slick_samples_correct": 0,
            }
        )
    _sample(rows, prompts, results, engine, config)
    for res in results:
        res["slick_generations"] = config.num_prompts + res["slick_samples_drawn"]
        res["slick_p_greedy"] = res["slick_greedy_correct"] / config.num_prompts
        res["slick_p_sample"] = res["slick_samples_correct"] / (config.num_prompts * config.num_samples)
        res["slick_category"] = categorize(res["slick_p_greedy"], res["slick_p_sample"])
    return results


def adaptive_rounds(num_prompts: int) -> list[list[int]]:
    """Prompts sampled per adaptive round, doubling: [0], [1, 2], [3..6], [7..9] for 10 prompts.

    Few rounds keep batches large; an example leaves at the end of the round of its first
    correct sample, so a doubling schedule spends at most about twice the samples needed.
    """
    rounds, start, size = [], 0, 1
    while start < num_prompts:
        rounds.append(list(range(start, min(start + size, num_prompts))))
        start, size = start + size, size * 2
    return rounds


def _sample(rows, prompts, results, engine: Engine, config: SlickConfig) -> None:
    """Draw samples: all of them (full sampling) or round by round until one is correct.

    Adaptive sampling only visits examples whose greedy answers are all wrong, and every
    (example, prompt) has its own seed, so it yields exactly the categories of full sampling.
    """
    pending = [i for i, r in enumerate(results) if config.full_sampling or r["slick_greedy_correct"] == 0]
    rounds = [list(range(config.num_prompts))] if config.full_sampling else adaptive_rounds(config.num_prompts)
    for prompt_indices in rounds:
        if not pending:
            return
        jobs = [(i, p) for i in pending for p in prompt_indices]
        outs = engine.generate(
            [
                GenerationRequest(
                    prompts[i][p],
                    n=config.num_samples,
                    temperature=config.temperature,
                    top_k=config.top_k,
                    max_new_tokens=config.max_new_tokens,
                    seed=request_seed(config.seed, rows[i]["id"], p),
                )
                for i, p in jobs
            ]
        )
        for (i, _), samples in zip(jobs, outs, strict=True):
            results[i]["slick_samples_drawn"] += len(samples)
            results[i]["slick_samples_correct"] += count_correct(
                [clean_completion(s) for s in samples], rows[i]["answers"]
            )
        if not config.full_sampling:
            pending = [i for i in pending if results[i]["slick_samples_correct"] == 0]


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
        path_exists = self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"chunk": chunk, "results": results}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if not path_exists:
            _fsync_dir(self.path.parent)
        self.done[chunk] = results


def _fsync_dir(path: Path) -> None:
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
            "model": [engine_info.get("model_id"), engine_info.get("model_revision")],
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
