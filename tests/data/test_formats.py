"""User datasets in their own formats, laid out as their Hub repos: annotate, reload, check every row."""

import json
from pathlib import Path

import datasets
import pytest

from slick_hf.annotate.job import AnnotateJob
from slick_hf.cli.main import main
from slick_hf.core.slick import CATEGORIES, SlickConfig, categorize
from slick_hf.data.formats import EXEMPLAR, MULTI_TURN, NOT_SHORT_FORM, DataFormat, detect_format
from slick_hf.errors import SlickError
from slick_hf.hub import META_FILE
from slick_hf.testing import hub_datasets as hub

SLICK = SlickConfig(num_prompts=2, num_shots=2, num_samples=2)
COLUMNS = dict(
    dataset_format="columns", question_column="query", answers_column="gold", relation_column="topic", id_column="qid"
)
# name -> (writer, splits to annotate, format settings, where exemplars come from)
CASES = {
    "triviaqa": (hub.write_triviaqa, ["train"], {"dataset_format": "triviaqa"}, "dev"),
    "nq_open": (hub.write_nq_open, ["train"], {}, "dev"),
    "popqa": (hub.write_popqa, ["test"], {}, "held out"),
    "messages": (hub.write_messages, ["train"], {}, "dev"),
    "prompt_completion": (hub.write_prompt_completion, ["train"], {}, "held out"),
    "columns": (hub.write_columns, ["train", "test"], COLUMNS, "held out"),
}


def load_dataset(path: str, config: str | None = None, split: str | None = None):
    """A local folder read afresh (`datasets` caches folders by name)."""
    return datasets.load_dataset(path, config, split=split, download_mode="force_redownload")


def _annotate(src: Path, out: Path, splits, settings: dict) -> Path:
    job = AnnotateJob(
        dataset=str(src),
        output_dir=out,
        model="test/facts",
        splits=splits,
        slick=SLICK,
        data_format=DataFormat(**settings),
    )
    return job.run(hub.FactEngine())


@pytest.fixture(scope="module", params=list(CASES))
def annotated(request, tmp_path_factory):
    """(case name, source folder, first annotated folder, second annotated folder: the same run again)."""
    write, splits, settings, _ = CASES[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    src = write(tmp / "src")
    return (
        request.param,
        src,
        _annotate(src, tmp / f"{request.param}_a", splits, settings),
        _annotate(src, tmp / f"{request.param}_b", splits, settings),
    )


def test_every_format_annotates_and_loads_back(annotated):
    name, src, out, _ = annotated
    _, splits, _, _ = CASES[name]
    for split in splits:
        ds = load_dataset(str(out), "test--facts", split=split)
        names = ds.features["slick_category"].names
        assert names == list(CATEGORIES)
        judged = [r for r in ds if r["slick_skipped"] is None]
        assert judged, name
        for row in judged:  # the category is the one its probabilities give
            assert names[row["slick_category"]] == categorize(row["slick_p_greedy"], row["slick_p_sample"])
        for row in ds:
            if row["slick_skipped"] is not None:
                assert row["slick_category"] is None and row["slick_p_greedy"] is None
        cats = {names[r["slick_category"]] for r in judged}
        assert {"HighlyKnown", "Unknown"} <= cats, (name, cats)
        # the FactEngine knows these answers greedily: their rows are HighlyKnown
        for row in judged:
            assert (names[row["slick_category"]] == "HighlyKnown") == (row["answers"][0] in hub.KNOWN_GREEDY)
        # every original row is kept, with its own columns
        original = load_dataset(str(src), split=split)
        assert len(ds) == len(original)
        assert [dict(r) for r in ds["slick_source"]] == original.to_list()


def test_ids_are_stable_across_runs_and_unique(annotated):
    name, _, first, second = annotated
    for split in CASES[name][1]:
        a = load_dataset(str(first), "test--facts", split=split)
        b = load_dataset(str(second), "test--facts", split=split)
        assert a["id"] == b["id"] and len(set(a["id"])) == len(a)
        assert a["slick_category"] == b["slick_category"]
    if name == "triviaqa":
        assert a["id"][0] == "tc_0"
    if name == "popqa":
        assert a["id"][0] == "1000" and set(a["relation"]) == {"capital"}
    if name in ("nq_open", "messages"):
        assert a["id"][0].startswith("train/") and set(a["relation"]) == {"default"}


def test_exemplars_are_never_the_target(annotated):
    name, _, out, _ = annotated
    meta = json.loads((out / "test--facts" / META_FILE).read_text())
    exemplar_ids = {e["id"] for pools in meta["exemplars"].values() for pool in pools for e in pool}
    exemplar_questions = {e["question"] for pools in meta["exemplars"].values() for pool in pools for e in pool}
    held_out = CASES[name][3] == "held out"
    assert ("held out" in meta["dataset"]["exemplars_from"]) == held_out
    for split in CASES[name][1]:
        ds = load_dataset(str(out), "test--facts", split=split)
        targets = [r for r in ds if r["slick_skipped"] is None]
        assert not {r["id"] for r in targets} & exemplar_ids
        assert not {r["question"] for r in targets} & exemplar_questions
        marked = {r["id"] for r in ds if r["slick_skipped"] == EXEMPLAR}
        if held_out and split == CASES[name][1][0]:
            assert marked and exemplar_ids <= marked  # held-out rows are marked in the split
        else:
            assert not marked
    card = (out / "README.md").read_text()
    assert meta["dataset"]["exemplars_from"] in card


def test_chat_rows_that_are_not_short_form_are_kept_and_counted(tmp_path):
    out = _annotate(hub.write_messages(tmp_path / "chat"), tmp_path / "out", ["train"], {"max_answer_tokens": 16})
    ds = load_dataset(str(out), "test--facts", split="train")
    skipped = dict(zip(ds["slick_skipped"], ds["slick_category"], strict=True))
    assert skipped[NOT_SHORT_FORM] is None and skipped[MULTI_TURN] is None
    meta = json.loads((out / "test--facts" / META_FILE).read_text())
    assert meta["splits"]["train"]["not_judged"] == {NOT_SHORT_FORM: 1, MULTI_TURN: 1}
    assert "1 not short-form" in (out / "README.md").read_text()
    # a tighter limit judges fewer rows: "Port Vila" has two tokens
    out = _annotate(hub.write_messages(tmp_path / "chat1"), tmp_path / "out1", ["train"], {"max_answer_tokens": 1})
    ds = load_dataset(str(out), "test--facts", split="train")
    assert ds["slick_skipped"].count(NOT_SHORT_FORM) == 2


def test_exemplar_split_and_validation_name(tmp_path):
    src = hub.write_nq_open(tmp_path / "nq")
    out = _annotate(src, tmp_path / "out", ["train", "validation"], {"exemplar_split": "train"})
    meta = json.loads((out / "test--facts" / META_FILE).read_text())
    assert "held out of the train split" in meta["dataset"]["exemplars_from"]
    assert set(meta["splits"]) == {"train", "dev"}  # validation is dev


def test_detect_format_names_the_columns():
    with pytest.raises(SlickError, match="cannot tell the format.*--dataset-format"):
        detect_format({"text": None, "label": None}, "mine")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dataset-format", "columns"], "--question-column and --answers-column"),
        (["--question-column", "q"], "go with --dataset-format columns"),
        (["--dataset-format", "bogus"], "bogus"),
        (["--max-answer-tokens", "0"], "max-answer-tokens"),
        (["--dataset-format", "columns", "--question-column", "query", "--answers-column", "nope"], "nope"),
        (
            [
                "--dataset-format",
                "columns",
                "--question-column",
                "query",
                "--answers-column",
                "gold",
                "--id-column",
                "x",
            ],
            "missing column(s) x",
        ),
        (["--dataset-format", "popqa"], "missing column(s) question, possible_answers, prop"),
        (["--exemplar-split", "validation"], "no split 'dev'"),
    ],
)
def test_bad_format_arguments_are_one_error_line(args, needle, tmp_path, capsys):
    src = hub.write_columns(tmp_path / "cols")
    capsys.readouterr()
    rc = main(["annotate", "--dataset", str(src), "--splits", "train", "--output-dir", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after datasets' progress bars
    assert rc == 2 and err.startswith("slick-hf: error: ") and needle in err, err


def test_cli_annotates_a_chat_set(tmp_path, capsys, monkeypatch):
    import slick_hf.engines.factory as factory

    monkeypatch.setattr(factory, "make_engine", lambda model, args: hub.FactEngine(model))
    src = hub.write_messages(tmp_path / "chat")
    out = tmp_path / "out"
    argv = ["annotate", "--dataset", str(src), "--splits", "train", "--output-dir", str(out), "--model", "t/m"]
    rc = main([*argv, "--dataset-format", "messages", "--num-prompts", "2", "--num-shots", "2", "--num-samples", "2"])
    assert rc == 0, capsys.readouterr().err
    assert len(load_dataset(str(out), "t--m", split="train")) == len(hub.chat_rows())
