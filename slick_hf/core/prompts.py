"""Few-shot exemplar sets (drawn once per relation from dev), SliCK prompts, the fine-tuning format."""

import random
from collections.abc import Mapping, Sequence

from slick_hf.errors import SlickError

Exemplar = Mapping[str, str]  # {"id", "question", "answer"}
# The fine-tuning and evaluation format (the paper's): no few-shot exemplars, the answer on its own line.
DEFAULT_PROMPT_TEMPLATE = "Answer the following question. {question}\n"
DEFAULT_COMPLETION_TEMPLATE = "{answer}"


def draw_exemplar_pools(
    dev_rows: Sequence[Mapping], relation: str, num_prompts: int, num_shots: int, seed: int
) -> list[list[dict[str, str]]]:
    """Draw `num_prompts` exemplar sets for one relation, each of `num_shots + 1` dev examples.

    One spare exemplar per set lets `exemplars_for` drop the target question when it is itself
    in dev, so a set never contains its target and stays the same for every other question.
    """
    pool = [
        {"id": r["id"], "question": r["question"], "answer": r["answers"][0]}
        for r in dev_rows
        if r["relation"] == relation and r["answers"]
    ]
    if len(pool) < num_shots + 1:
        raise SlickError(
            f"relation {relation} has {len(pool)} dev examples; {num_shots + 1} are needed "
            f"to draw {num_shots}-shot prompts"
        )
    rng = random.Random(f"slick-exemplars:{seed}:{relation}")
    return [rng.sample(pool, num_shots + 1) for _ in range(num_prompts)]


def exemplars_for(pool: Sequence[Exemplar], target_id: str, num_shots: int) -> list[Exemplar]:
    """The first `num_shots` exemplars of a drawn set that are not the target itself."""
    return [e for e in pool if e["id"] != target_id][:num_shots]


def render_prompt(exemplars: Sequence[Exemplar], question: str) -> str:
    """`Q: <question>\\nA: <answer>\\n\\n` per exemplar, then `Q: <target>\\nA:`."""
    shots = "".join(f"Q: {e['question']}\nA: {e['answer']}\n\n" for e in exemplars)
    return f"{shots}Q: {question}\nA:"
