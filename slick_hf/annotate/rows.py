"""SliCK on a few examples: greedy answers to every prompt, then the samples that decide the category."""

import hashlib
from collections.abc import Mapping, Sequence

from datasets import Dataset

from slick_hf.core.normalize import exact_match
from slick_hf.core.prompts import draw_exemplar_pools, exemplars_for, render_prompt
from slick_hf.core.slick import SlickConfig, categorize, clean_completion, count_correct
from slick_hf.engines.base import Engine, GenerationRequest


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
                "slick_prompt_greedy_correct": [exact_match(a, row["answers"]) for a in answers],
                "slick_prompt_samples_drawn": [0] * config.num_prompts,
                "slick_prompt_samples_correct": [0] * config.num_prompts,
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
        for (i, p), samples in zip(jobs, outs, strict=True):
            correct = count_correct([clean_completion(s) for s in samples], rows[i]["answers"])
            results[i]["slick_samples_drawn"] += len(samples)
            results[i]["slick_samples_correct"] += correct
            results[i]["slick_prompt_samples_drawn"][p] = len(samples)
            results[i]["slick_prompt_samples_correct"][p] = correct
        if not config.full_sampling:
            pending = [i for i in pending if results[i]["slick_samples_correct"] == 0]
