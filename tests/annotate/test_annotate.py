"""slick_hf.annotate and AnnotateJob with the real SmolLM2-135M (tiny SliCK config, few examples)."""

import json
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, load_dataset
from huggingface_hub import DatasetCard

from slick_hf.annotate.card import render_annotation_section
from slick_hf.annotate.job import WORK_DIR, AnnotateJob
from slick_hf.annotate.journal import ChunkJournal, annotate_dataset, run_fingerprint
from slick_hf.annotate.rows import adaptive_rounds, annotate_rows, exemplar_pools_by_relation, request_seed
from slick_hf.core.prompts import exemplars_for, render_prompt
from slick_hf.core.schema import QUESTION_FEATURES, ROW_FEATURES, SLICK_FEATURES
from slick_hf.core.slick import CATEGORIES, categorize, count_correct
from slick_hf.hub import BEGIN, END, META_FILE

FAMOUS = {
    "id": "t/france",
    "relation": "capital",
    "question": "What is the capital of France?",
    "answers": ["Paris"],
}
MADE_UP = {
    "id": "t/zorblatvia",
    "relation": "capital",
    "question": "What is the capital of Zorblatvia?",
    "answers": ["Qwxzyplont"],
}


def _asks(request, question: str) -> bool:
    return request.prompt.endswith(f"Q: {question}\nA:")


# ---------------------------------------------------------------- request_seed (no model)


def test_request_seed_is_stable_and_depends_on_every_input():
    s = request_seed(0, "geo/capital/test/1", 3)
    assert s == request_seed(0, "geo/capital/test/1", 3)
    assert 0 <= s < 2**31
    others = {request_seed(1, "geo/capital/test/1", 3), request_seed(0, "geo/capital/test/2", 3)}
    others.add(request_seed(0, "geo/capital/test/1", 4))
    assert s not in others and len(others) == 3


# ---------------------------------------------------------------- annotate_rows (real model)


@pytest.fixture(scope="module")
def geo_test():
    from slick_hf.data import load_questions

    ds = load_questions("geo", splits=("test",), relations=("capital", "continent"))[0]["test"]
    return {row["id"]: row for row in ds.to_list()}


@pytest.fixture(scope="module")
def rows():
    return [FAMOUS, MADE_UP]


@pytest.fixture(scope="module")
def pools(geo_dev, small_slick):
    return exemplar_pools_by_relation(geo_dev, ["capital"], small_slick)


@pytest.fixture(scope="module")
def runs(engine, rows, pools, small_slick, counting_engine):
    """The same rows annotated adaptively and with full sampling, with the requests each made."""
    out = {}
    for name, cfg in (("adaptive", small_slick), ("full", replace(small_slick, full_sampling=True))):
        counting = counting_engine(engine)
        out[name] = (annotate_rows(rows, pools, counting, cfg), counting, cfg)
    return out


def test_famous_fact_is_known_and_made_up_one_unknown(runs):
    results, _, _ = runs["adaptive"]
    assert results[0]["slick_category"] != "Unknown", results[0]
    assert results[0]["slick_greedy_correct"] + results[0]["slick_samples_correct"] > 0
    assert results[1]["slick_category"] == "Unknown", results[1]
    assert results[1]["slick_p_greedy"] == results[1]["slick_p_sample"] == 0.0


@pytest.mark.parametrize("mode", ["adaptive", "full"])
def test_result_fields_are_consistent(runs, rows, mode):
    results, _, cfg = runs[mode]
    assert len(results) == len(rows)
    for row, res in zip(rows, results, strict=True):
        assert set(res) == set(ROW_FEATURES)  # slick_label_stability comes per split
        assert len(res["slick_greedy_answers"]) == cfg.num_prompts
        assert all("\n" not in a and a == a.strip() for a in res["slick_greedy_answers"])
        assert res["slick_greedy_correct"] == count_correct(res["slick_greedy_answers"], row["answers"])
        assert res["slick_p_greedy"] == res["slick_greedy_correct"] / cfg.num_prompts
        assert res["slick_p_sample"] == res["slick_samples_correct"] / (cfg.num_prompts * cfg.num_samples)
        assert res["slick_category"] == categorize(res["slick_p_greedy"], res["slick_p_sample"])
        assert res["slick_generations"] == cfg.num_prompts + res["slick_samples_drawn"]
        assert 0 <= res["slick_samples_correct"] <= res["slick_samples_drawn"]
        assert res["slick_generations"] <= cfg.max_generations


def test_full_sampling_draws_every_sample(runs):
    results, counting, cfg = runs["full"]
    for res in results:
        assert res["slick_samples_drawn"] == cfg.num_prompts * cfg.num_samples
        assert res["slick_generations"] == cfg.max_generations
    assert sum(r.n for r in counting.requests) == sum(res["slick_generations"] for res in results)


def test_adaptive_sampling_only_samples_what_matters(runs):
    results, counting, cfg = runs["adaptive"]
    for res in results:
        drawn = res["slick_samples_drawn"]
        if res["slick_greedy_correct"] > 0:
            assert drawn == 0  # greedy alone decides HighlyKnown / MaybeKnown
        elif res["slick_samples_correct"] == 0:
            assert drawn == cfg.num_prompts * cfg.num_samples  # Unknown needs every sample
        else:  # stops at the end of the round of its first correct sample
            round_ends = {r[-1] + 1 for r in adaptive_rounds(cfg.num_prompts)}
            assert drawn % cfg.num_samples == 0 and drawn // cfg.num_samples in round_ends
    assert sum(r.n for r in counting.requests) == sum(res["slick_generations"] for res in results)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 17])
def test_adaptive_rounds_double_and_cover_every_prompt_once(n):
    rounds = adaptive_rounds(n)
    assert [p for r in rounds for p in r] == list(range(n))
    assert all(len(r) == 2**k for k, r in enumerate(rounds[:-1])) and 0 < len(rounds[-1]) <= 2 ** (len(rounds) - 1)
    assert adaptive_rounds(10) == [[0], [1, 2], [3, 4, 5, 6], [7, 8, 9]]


def test_requests_use_the_relation_pools_and_per_request_seeds(runs, rows, pools):
    _, counting, cfg = runs["adaptive"]
    greedy = [r for r in counting.requests if r.greedy]
    sampled = [r for r in counting.requests if not r.greedy]
    expected = [
        render_prompt(exemplars_for(pool, row["id"], cfg.num_shots), row["question"])
        for row in rows
        for pool in pools[row["relation"]]
    ]
    assert [r.prompt for r in greedy] == expected
    assert all(r.n == 1 and r.max_new_tokens == cfg.max_new_tokens for r in greedy)
    for r in sampled:
        row = next(row for row in rows if _asks(r, row["question"]))
        p = [i for i, e in enumerate(expected) if e == r.prompt][0] % cfg.num_prompts
        assert (r.n, r.temperature, r.top_k) == (cfg.num_samples, cfg.temperature, cfg.top_k)
        assert r.seed == request_seed(cfg.seed, row["id"], p)


def test_adaptive_and_full_sampling_agree(runs):
    adaptive, a_engine, _ = runs["adaptive"]
    full, f_engine, _ = runs["full"]
    assert [r["slick_category"] for r in adaptive] == [r["slick_category"] for r in full]
    assert [r["slick_greedy_answers"] for r in adaptive] == [r["slick_greedy_answers"] for r in full]
    for a, f in zip(adaptive, full, strict=True):
        assert a["slick_samples_correct"] <= f["slick_samples_correct"]  # adaptive P(T>0) is a lower bound
        assert a["slick_generations"] <= f["slick_generations"]
    # every sample request of the adaptive run is one the full run made, same seed
    assert set(r for r in a_engine.requests if not r.greedy) <= set(f_engine.requests)


# ---------------------------------------------------------------- annotate_dataset: resume


SIX = [  # three chunks of two; mostly famous facts to keep sampling (the costly part) rare
    "geo/capital/test/3175395",  # Italy
    "geo/capital/test/357994",  # Egypt
    "geo/capital/test/4030699",  # Pitcairn: the interrupted chunk, likely sampled in full
    "geo/continent/test/453733",  # Estonia
    "geo/continent/test/660013",  # Finland
    "geo/continent/test/3175395",  # Italy
]


@pytest.fixture(scope="module")
def six(geo_test):
    return Dataset.from_list([geo_test[i] for i in SIX], features=QUESTION_FEATURES)


@pytest.fixture(scope="module")
def six_pools(geo_dev, six, small_slick):
    return exemplar_pools_by_relation(geo_dev, six["relation"], small_slick)


@pytest.fixture(scope="module")
def uninterrupted(engine, six, six_pools, small_slick, tmp_path_factory, counting_engine):
    counting = counting_engine(engine)
    work = tmp_path_factory.mktemp("uninterrupted")
    ds = annotate_dataset(six, six_pools, counting, small_slick, work, chunk_size=2)
    return ds, work


def test_annotated_dataset_schema(uninterrupted, six):
    ds, _ = uninterrupted
    assert isinstance(ds, Dataset) and len(ds) == 6
    assert isinstance(ds.features["slick_category"], ClassLabel)
    assert ds.features["slick_category"].names == list(CATEGORIES)
    assert ds.column_names == six.column_names + list(SLICK_FEATURES)
    assert ds.select_columns(six.column_names).to_list() == six.to_list()
    for row in ds:
        assert CATEGORIES[row["slick_category"]] == categorize(row["slick_p_greedy"], row["slick_p_sample"])


def test_resume_after_interruption_equals_uninterrupted_run(
    engine, uninterrupted, six, six_pools, small_slick, tmp_path, counting_engine
):
    expected, _ = uninterrupted
    rows = six.to_list()
    chunk1 = [r["question"] for r in rows[2:4]]

    def second_chunk(requests):
        return any(_asks(r, q) for r in requests for q in chunk1)

    interrupted = counting_engine(engine, fail_when=second_chunk)
    with pytest.raises(KeyboardInterrupt):
        annotate_dataset(six, six_pools, interrupted, small_slick, tmp_path, chunk_size=2)
    journals = list(tmp_path.glob("*.jsonl"))
    assert len(journals) == 1
    assert [json.loads(line)["chunk"] for line in journals[0].read_text().splitlines()] == [0]

    resumed = counting_engine(engine)
    ds = annotate_dataset(six, six_pools, resumed, small_slick, tmp_path, chunk_size=2)
    assert ds.to_list() == expected.to_list()
    assert ds.features == expected.features
    # the first chunk was not redone; the other two were
    asked = {row["id"] for row in rows if any(_asks(r, row["question"]) for r in resumed.requests)}
    assert asked == {row["id"] for row in rows[2:]}
    assert [json.loads(line)["chunk"] for line in journals[0].read_text().splitlines()] == [0, 1, 2]


def test_torn_journal_line_is_dropped_on_resume(
    engine, uninterrupted, six, six_pools, small_slick, tmp_path, counting_engine
):
    expected, done_dir = uninterrupted
    rows = six.to_list()
    # the complete journal of the uninterrupted run, plus garbage from a kill mid-write
    work = tmp_path / "w"
    work.mkdir()
    (src,) = done_dir.glob("*.jsonl")
    path = work / src.name
    shutil.copyfile(src, path)
    good = path.read_bytes()
    with path.open("ab") as f:
        f.write(b'{"chunk": 3, "results": [{"slick_cat')
    again = counting_engine(engine)
    ds = annotate_dataset(six, six_pools, again, small_slick, work, chunk_size=2)
    assert again.calls == 0
    assert ds.to_list() == expected.to_list()
    assert path.read_bytes() == good  # the torn tail was cut off

    # a last chunk torn in the middle: only that chunk is redone
    lines = good.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    redo = counting_engine(engine)
    ds = annotate_dataset(six, six_pools, redo, small_slick, work, chunk_size=2)
    assert ds.to_list() == expected.to_list()
    asked = {row["id"] for row in rows if any(_asks(r, row["question"]) for r in redo.requests)}
    assert asked == {row["id"] for row in rows[4:]}
    assert len(ChunkJournal(path).done) == 3


def test_journal_record_after_unterminated_last_line_is_kept(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"chunk": 0, "results": []}\n{"chunk": 1, "results": []}')
    ChunkJournal(path).record(2, [])
    assert {0, 2} <= set(ChunkJournal(path).done)


def test_journal_is_keyed_by_parameters(six, six_pools, small_slick, tmp_path, scripted_engine):
    first = scripted_engine()
    annotate_dataset(six, six_pools, first, small_slick, tmp_path, chunk_size=4)
    assert first.calls > 0
    same = scripted_engine()
    annotate_dataset(six, six_pools, same, small_slick, tmp_path, chunk_size=4)
    assert same.calls == 0
    other_seed = scripted_engine()
    other = replace(small_slick, seed=1)
    annotate_dataset(six, six_pools, other_seed, other, tmp_path, chunk_size=4)
    assert other_seed.calls > 0
    other_model = scripted_engine(model_id="test/other")
    annotate_dataset(six, six_pools, other_model, small_slick, tmp_path, chunk_size=4)
    assert other_model.calls > 0
    assert len(list(tmp_path.glob("*.jsonl"))) == 3


# ---------------------------------------------------------------- AnnotateJob end to end


@pytest.fixture(scope="module")
def job_dir(engine, small_slick, tmp_path_factory, counting_engine):
    out = tmp_path_factory.mktemp("job") / "annotated"
    job = _job(out, small_slick)
    counting = counting_engine(engine)
    assert not job.is_done()
    assert job.run(counting) == out
    assert counting.calls > 0
    return out


def _job(out: Path, slick, **kw) -> AnnotateJob:
    args = dict(
        dataset="geo",
        output_dir=out,
        model="smollm2-135m",
        splits=("test",),
        relations=("capital", "continent"),
        limit_per_relation=1,
        slick=slick,
        chunk_size=2,
    )
    return AnnotateJob(**(args | kw))


def test_job_output_loads_with_datasets(job_dir):
    dd = load_dataset(str(job_dir), "smollm2-135m")
    assert list(dd) == ["test"]
    ds = dd["test"]
    assert len(ds) == 2 and sorted(set(ds["relation"])) == ["capital", "continent"]
    assert isinstance(ds.features["slick_category"], ClassLabel)
    assert ds.features["slick_category"].names == list(CATEGORIES)
    for col in ["id", "relation", "subject", "question", "answers", "split", *SLICK_FEATURES]:
        assert col in ds.column_names
    for row in ds:
        assert CATEGORIES[row["slick_category"]] == categorize(row["slick_p_greedy"], row["slick_p_sample"])


def test_job_card_and_meta(job_dir):
    ds = load_dataset(str(job_dir), "smollm2-135m", split="test")
    card = DatasetCard.load(job_dir / "README.md")
    configs = {c["config_name"]: c for c in card.data.configs}
    assert configs["smollm2-135m"]["data_files"] == [{"split": "test", "path": "smollm2-135m/test-*.parquet"}]
    text = card.text
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "## Config `smollm2-135m`" in text
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in text
    assert "### test: 2 examples" in text
    assert "Data preparation (test):" in text and "limit 1 per split and relation" in text
    counts = Counter(CATEGORIES[c] for c in ds["slick_category"])
    mix = " | ".join(f"{counts[c]} ({100 * counts[c] / 2:.0f}%)" for c in CATEGORIES)
    assert f"| all | {mix} |" in text

    meta = json.loads((job_dir / "smollm2-135m" / META_FILE).read_text())
    assert meta["model"]["model_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["model"]["argument"] == "smollm2-135m"
    threads = meta["model"]["threads"]  # the in-process engine's torch threads, named in the card
    assert int(threads) >= 1 and f"computing in `float32` on {threads} CPU thread(s)" in text
    assert meta["splits"]["test"]["categories"] == {c: counts[c] for c in CATEGORIES}
    assert meta["splits"]["test"]["generations"]["total"] == sum(ds["slick_generations"])
    assert sorted(meta["exemplars"]) == ["capital", "continent"]
    meta["splits"]["test"]["generations"]["mean_by_category"] = {"Unknown": 170.0, "WeaklyKnown": 42.0}
    rendered = render_annotation_section([meta | {"config_name": "smollm2-135m"}])
    assert "per example by category: WeaklyKnown 42.0, Unknown 170.0." in rendered
    # nothing half-written is left behind (temp files start with a dot)
    hidden = [p for p in job_dir.rglob(".*") if WORK_DIR not in p.relative_to(job_dir).parts]
    assert hidden == []


def test_job_is_idempotent(job_dir, engine, small_slick, counting_engine):
    job = _job(job_dir, small_slick)
    assert job.is_done()
    assert not _job(job_dir, replace(small_slick, seed=1)).is_done()
    assert not _job(job_dir, small_slick, splits=("dev", "test")).is_done()
    assert not _job(job_dir, small_slick, config_name="other").is_done()
    before = load_dataset(str(job_dir), "smollm2-135m", split="test").to_list()
    again = counting_engine(engine)
    job.run(again)
    assert again.calls == 0
    assert load_dataset(str(job_dir), "smollm2-135m", split="test").to_list() == before


def test_second_config_keeps_the_first_and_user_text(job_dir, small_slick, scripted_engine):
    readme = job_dir / "README.md"
    card = DatasetCard.load(readme)
    card.text = "My own notes about this dataset.\n\n" + card.text + "\n\nFooter written by hand.\n"
    readme.write_text(str(card))
    first = load_dataset(str(job_dir), "smollm2-135m", split="test").to_list()

    scripted = scripted_engine(model_id="test/scripted")
    _job(job_dir, small_slick, model="test/scripted", relations=("capital",)).run(scripted)
    assert scripted.calls > 0

    card = DatasetCard.load(readme)
    assert [c["config_name"] for c in card.data.configs] == ["smollm2-135m", "test--scripted"]
    assert card.text.startswith("My own notes about this dataset.")
    assert "Footer written by hand." in card.text
    assert card.text.count(BEGIN) == 1 and card.text.count(END) == 1
    assert "## Config `smollm2-135m`" in card.text and "## Config `test--scripted`" in card.text
    assert load_dataset(str(job_dir), "smollm2-135m", split="test").to_list() == first
    second = load_dataset(str(job_dir), "test--scripted", split="test")
    assert len(second) == 1 and second[0]["relation"] == "capital"
    assert _job(job_dir, small_slick).is_done()


def test_resume_fingerprint_names_bf16_threads_and_keeps_float32_journal_names(six, six_pools, small_slick):
    def fingerprint(**info):
        return run_fingerprint(six, six_pools, small_slick, {"model_id": "m", "model_revision": "r", **info}, 2)

    # float32 rows do not depend on the thread count (128 geo examples, 1 and 2 threads): journals written
    # before dtypes and threads were recorded keep their names
    assert fingerprint(dtype="float32", threads="1") == fingerprint(dtype="float32", threads="2") == fingerprint()
    # bf16 products split over another number of threads round differently: no resume across them
    assert fingerprint(dtype="bfloat16", threads="1") != fingerprint(dtype="bfloat16", threads="2")
    assert fingerprint(dtype="bfloat16", threads="2") != fingerprint(dtype="float32", threads="2")
    assert fingerprint(dtype="bfloat16", threads="2") == fingerprint(dtype="bfloat16", threads="2")
