"""`--engine vllm` on SmolLM2, against the fast engine in fp32, and a real `vllm serve` process behind
`--engine openai`. Skipped where vLLM is not installed (`make install-vllm` builds its environment)."""

from pathlib import Path

import pytest

from slick_hf.annotate.card import reproducibility_note
from slick_hf.annotate.rows import annotate_rows, exemplar_pools_by_relation
from slick_hf.core.slick import SlickConfig
from slick_hf.data import load_questions
from slick_hf.engines.base import GenerationRequest
from slick_hf.engines.vllm.engine import VLLMEngine, vllm_python
from slick_hf.models import resolve_model
from slick_hf.testing.network import free_port, stop_process

pytestmark = pytest.mark.skipif(vllm_python() is None, reason="vLLM is not installed (make install-vllm)")
RELATIONS = ("capital", "city_country", "city_state")


@pytest.fixture(scope="module")
def geo():
    """12 train questions (4 per relation) and exemplar pools from dev."""
    train = load_questions("geo", splits=("train",), relations=RELATIONS, limit_per_relation=4)[0]["train"]
    dev = load_questions("geo", splits=("dev",), relations=RELATIONS, limit_per_relation=20)[0]["dev"]
    config = SlickConfig()
    return train.to_list(), exemplar_pools_by_relation(dev, list(RELATIONS), config), config


@pytest.fixture(scope="module")
def vllm_engine():
    with VLLMEngine("smollm2-135m", dtype="float32") as engine:
        yield engine


@pytest.fixture(scope="module")
def fast_labels(geo):
    from slick_hf.engines.fast.engine import TransformersEngine

    rows, pools, config = geo
    with TransformersEngine("smollm2-135m", dtype="float32") as engine:
        return annotate_rows(rows, pools, engine, config)


def test_vllm_labels_match_the_fast_engine_where_greedy_answers_decide(geo, vllm_engine, fast_labels):
    """Greedy answers (fp32 in both) agree; categories the greedy answers decide (HighlyKnown, MaybeKnown) agree
    row for row; WeaklyKnown against Unknown rests on samples, which vLLM on CPU draws from its own stream
    (12 rows, 2-core Xeon without AMX: 9 equal, 3 WeaklyKnown/Unknown flips). The benchmark measures the share
    of equal categories on more rows."""
    rows, pools, config = geo
    labels = annotate_rows(rows, pools, vllm_engine, config)
    pairs = [
        (a, b)
        for ours, theirs in zip(labels, fast_labels, strict=True)
        for a, b in zip(ours["slick_greedy_answers"], theirs["slick_greedy_answers"], strict=True)
    ]
    assert sum(a == b for a, b in pairs) >= 0.9 * len(pairs), [p for p in pairs if p[0] != p[1]]
    by_greedy = {"HighlyKnown", "MaybeKnown"}
    differ = [
        (row["question"], ours["slick_category"], theirs["slick_category"], ours["slick_greedy_answers"])
        for row, ours, theirs in zip(rows, labels, fast_labels, strict=True)
        if ours["slick_category"] != theirs["slick_category"]
    ]
    assert all(not ({c1, c2} & by_greedy) for _, c1, c2, _ in differ), differ


def test_vllm_info_says_how_samples_are_drawn(vllm_engine):
    info = vllm_engine.info()
    assert info["engine"] == "vllm" and info["dtype"] == "float32" and info["model_id"]
    assert info["seeded_samples"] in ("true", "false")
    if info["device"] == "cpu":  # vLLM on CPU cannot seed single requests
        assert info["seeded_samples"] == "false" and "not" in reproducibility_note(info)
    samples = vllm_engine.generate([GenerationRequest("Q: What is the capital of France?\nA:", n=4, temperature=0.5)])
    assert len(samples) == 1 and len(samples[0]) == 4 and all("\n" not in s for s in samples[0])


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """`vllm serve` (the OpenAI-compatible server) on 127.0.0.1, started from the vLLM environment."""
    from slick_hf.errors import SlickError
    from slick_hf.testing.vllm_server import start_vllm_server

    log = Path(tmp_path_factory.mktemp("vllm")) / "server.log"
    try:
        process, url = start_vllm_server(resolve_model("smollm2-135m"), free_port(), log)
    except SlickError as err:
        pytest.skip(str(err))
    yield url
    stop_process(process, 60)


def test_openai_engine_through_vllm_serve_matches_vllm_in_process(geo, vllm_engine, vllm_server):
    from slick_hf.engines.openai import OpenAIEngine

    rows, pools, config = geo
    prompts = [
        GenerationRequest(f"Q: {row['question']}\nA:", max_new_tokens=config.max_new_tokens, stop=("\n",))
        for row in rows
    ]
    with OpenAIEngine(resolve_model("smollm2-135m"), [vllm_server], request_seeds=False) as served:
        assert served.generate(prompts) == vllm_engine.generate(prompts)
        labels = annotate_rows(rows[:3], pools, served, config)  # samples without seeds: the server stays up
        assert all(label["slick_category"] for label in labels)
        assert served.info()["seeded_samples"] == "false"
