"""The TGI engine against the TGI-protocol test server (slick_hf.testing) on 127.0.0.1."""

import json
import logging
import time

import pytest
from datasets import Dataset

from slick_hf.annotate.journal import annotate_dataset
from slick_hf.annotate.rows import annotate_rows, exemplar_pools_by_relation
from slick_hf.core.slick import SlickConfig
from slick_hf.engines.base import GenerationRequest
from slick_hf.engines.factory import EngineArguments, make_engine
from slick_hf.engines.remote import sample_seed
from slick_hf.engines.tgi import TGIEngine
from slick_hf.errors import SlickError
from slick_hf.testing import FakeBackend, Faults, ServerThread, TransformersBackend
from slick_hf.testing.fixtures import tiny_geo_rows
from slick_hf.testing.network import free_port

CONFIG = SlickConfig(num_prompts=3, num_samples=4, max_new_tokens=12)
FAST = {"backoff_base": 0.02, "backoff_max": 0.2, "startup_timeout": 10, "progress": False}


@pytest.fixture(scope="module", autouse=True)
def _hub_online_for_local_servers():
    """conftest sets HF_HUB_OFFLINE, which makes InferenceClient refuse even 127.0.0.1."""
    from huggingface_hub import constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        yield


@pytest.fixture(scope="module")
def local(engine):
    """The in-process SmolLM2 engine (conftest's, shared by the session)."""
    return engine


@pytest.fixture(scope="module")
def data():
    rows, dev = tiny_geo_rows()
    pools = exemplar_pools_by_relation(Dataset.from_list(dev), sorted({r["relation"] for r in rows}), CONFIG)
    return rows, pools


@pytest.fixture(scope="module")
def reference(local, data):
    """A fault-free annotation through the test server, and the server's request counts."""
    rows, pools = data
    with ServerThread(TransformersBackend(local)) as server, TGIEngine("smollm2-135m", [server.url], **FAST) as eng:
        results = annotate_rows(rows, pools, eng, CONFIG)
        return results, dict(server.state.requests), eng.info(), eng.stats


def test_server_matches_in_process_greedy(local, data, reference):
    rows, pools = data
    served, requests, info, stats = reference
    in_process = annotate_rows(rows, pools, local, CONFIG)
    for row, a, b in zip(rows, served, in_process, strict=True):
        assert a["slick_greedy_answers"] == b["slick_greedy_answers"], row["question"]
        if b["slick_category"] in ("HighlyKnown", "MaybeKnown"):
            assert a["slick_category"] == b["slick_category"], row["question"]
    # InferenceClient posts to TGI's compat route `POST /`; every sample is its own request.
    samples = sum(r["slick_samples_drawn"] for r in served)
    assert requests == {"/": len(rows) * CONFIG.num_prompts + samples}
    assert stats.requests == stats.succeeded == requests["/"] and stats.total_retries == 0
    assert info["engine"] == "tgi"
    assert (info["model_id"], info["model_revision"]) == (
        local.info()["model_id"],
        local.info()["model_revision"],
    )
    assert {r["slick_category"] for r in served} >= {"HighlyKnown", "Unknown"}


def test_faults_give_identical_results_and_count_retries(local, data, reference):
    rows, pools = data
    faults = Faults(error_rate=0.2, rate_limit_rate=0.1, drop_rate=0.1, latency=0.0, latency_max=0.05, seed=7)
    with ServerThread(TransformersBackend(local), faults) as server:
        # 40% of attempts fail: 20 retries (not the default 6) keep 21 failures in a row out of reach
        with TGIEngine("smollm2-135m", [server.url], concurrency=8, max_retries=20, **FAST) as eng:
            results = annotate_rows(rows, pools, eng, CONFIG)
            stats = eng.stats
    assert results == reference[0]
    assert stats.retries["5xx"] > 0 and stats.retries["429"] > 0 and stats.retries["connection"] > 0
    assert stats.requests == stats.succeeded + stats.total_retries
    assert stats.succeeded == reference[3].succeeded
    summary = stats.summary()
    assert "retries: 429" in summary and "5xx" in summary and "connection" in summary


def test_server_death_then_resume_skips_finished_chunks(local, data, reference, tmp_path):
    rows, pools = data
    questions = Dataset.from_list(rows)
    port = free_port()
    # The first chunk (France, Japan) needs 6 greedy requests and no samples; die during chunk 2.
    with ServerThread(TransformersBackend(local), Faults(die_after=9), port=port) as first:
        with TGIEngine("smollm2-135m", [first.url], max_retries=2, **FAST) as eng:
            start = time.monotonic()
            with pytest.raises(SlickError, match="run the same command again"):
                annotate_dataset(questions, pools, eng, CONFIG, tmp_path, chunk_size=2)
            assert time.monotonic() - start < 20
        assert first.wait_dead()
    journal = next(tmp_path.glob("*.jsonl"))
    done = [json.loads(line)["chunk"] for line in journal.read_text().splitlines()]
    assert done == [0]
    with ServerThread(TransformersBackend(local), port=port) as second:
        with TGIEngine("smollm2-135m", [second.url], **FAST) as eng:
            annotated = annotate_dataset(questions, pools, eng, CONFIG, tmp_path, chunk_size=2)
        finished = {rows[0]["question"], rows[1]["question"]}
        assert second.state.prompts and not any(
            p.endswith(tuple(f"Q: {q}\nA:" for q in finished)) for p in second.state.prompts
        )
        assert second.state.generation_requests == reference[3].succeeded - 2 * CONFIG.num_prompts
    names = annotated.features["slick_category"].names
    got = [{**r, "slick_category": names[r["slick_category"]]} for r in annotated.to_list()]
    assert [{k: r[k] for k in ref} for r, ref in zip(got, reference[0], strict=True)] == reference[0]


def test_unreachable_server_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(SlickError, match="did not answer /health within 0.5 s") as err:
        make_engine("smollm2-135m", EngineArguments(engine="tgi", endpoint=[url], startup_timeout=0.5))
    assert url in str(err.value) and time.monotonic() - start < 5


def test_server_down_mid_run_fails_within_retry_budget():
    with ServerThread(FakeBackend(), Faults(die_after=0)) as server:
        eng = TGIEngine("m", [server.url], max_retries=3, **FAST)
        start = time.monotonic()
        with pytest.raises(SlickError, match="down|attempts"):
            eng.generate([GenerationRequest(f"Q: {i}\nA:") for i in range(20)])
        assert time.monotonic() - start < 5
        assert eng.stats.retries["connection"] > 0
        eng.close()


def test_dead_endpoint_leaves_rotation_and_others_carry_on():
    with (
        ServerThread(FakeBackend(), Faults(latency=0.02)) as good,
        ServerThread(FakeBackend(), Faults(latency=0.02, die_after=5)) as bad,
        TGIEngine("m", [good.url, bad.url], concurrency=8, max_retries=2, **FAST) as eng,
    ):
        out = eng.generate([GenerationRequest(f"Q: {i}\nA:") for i in range(60)])
        assert out == [[" Paris"]] * 60
        assert eng.stats.dead_endpoints == [bad.url]
        # (a response in flight when the server died may be lost, and its request redone)
        assert bad.state.generated <= 5 and good.state.generated >= 55
        # again: all requests go to the live endpoint
        before = good.state.generated
        eng.generate([GenerationRequest("Q: x\nA:")] * 5)
        assert good.state.generated == before + 5


def test_load_spreads_over_endpoints_by_outstanding_requests():
    slow, fast = Faults(latency=0.2), Faults(latency=0.02)
    with ServerThread(FakeBackend(), slow) as a, ServerThread(FakeBackend(), fast) as b:
        with TGIEngine("m", [a.url, b.url], concurrency=4, **FAST) as eng:
            eng.generate([GenerationRequest(f"Q: {i}\nA:") for i in range(40)])
        # the fast server finishes its requests sooner, so it is picked more often
        assert a.state.generated + b.state.generated == 40
        assert b.state.generated > 2 * a.state.generated > 0


def test_offline_mode_is_a_clear_error(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SlickError, match="HF_HUB_OFFLINE"):
        TGIEngine("m", ["http://127.0.0.1:1"], **FAST)


def test_tgi_protocol_details(caplog):
    with ServerThread(FakeBackend(" Paris", model_id="org/other-model")) as server:
        with caplog.at_level(logging.WARNING):
            eng = TGIEngine("smollm2-135m", [server.url], **FAST)
        assert "org/other-model" in caplog.text and "smollm2-135m" in caplog.text
        assert eng.info()["model_id"] == "org/other-model" and eng.info()["model_revision"] == "fake"
        # the server keeps the stop sequence in generated_text; the engine cuts it
        from huggingface_hub import InferenceClient

        raw = InferenceClient(base_url=server.url).text_generation("Q: x\nA:", stop=["\n"], details=True)
        assert raw.generated_text == " Paris\n" and raw.details.finish_reason == "stop_sequence"
        # sampled requests: one HTTP request per sample, seeds derived from (seed, index)
        seen = []
        server.state.record_parameters = seen
        req = GenerationRequest("Q: y\nA:", n=4, temperature=0.5, top_k=40, seed=11)
        assert eng.generate([req, GenerationRequest("Q: z\nA:")]) == [[" Paris"] * 4, [" Paris"]]
        sampled = [p for p in seen if p["do_sample"]]
        assert sorted(p["seed"] for p in sampled) == sorted(sample_seed(11, i) for i in range(4))
        assert all(p["temperature"] == 0.5 and p["top_k"] == 40 and p["stop"] == ["\n"] for p in sampled)
        greedy = [p for p in seen if not p["do_sample"]]
        assert len(greedy) == 1 and greedy[0]["temperature"] is None
        eng.close()


def test_endpoints_serving_different_models_are_refused():
    with (
        ServerThread(FakeBackend(model_id="org/a", model_sha="1")) as a,
        ServerThread(FakeBackend(model_id="org/b", model_sha="2")) as b,
    ):
        with pytest.raises(SlickError, match="different models"):
            TGIEngine("org/a", [a.url, b.url], **FAST)
