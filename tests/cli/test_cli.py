"""`slick-hf annotate`: bad input ends in one error line on stderr, exit 2, and nothing complete-looking."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_dataset

import slick_hf.engines.factory as factory
from slick_hf.cli.main import main

ENV = dict(
    os.environ,
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TOKENIZERS_PARALLELISM="false",
    OMP_NUM_THREADS="1",
)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "slick_hf.cli", *args], capture_output=True, text=True, env=ENV, timeout=300
    )


def _assert_one_error_line(stderr: str, rc: int, *needles: str) -> str:
    assert rc == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("slick-hf: error: "), stderr
    for needle in needles:
        assert needle in lines[0], stderr
    return lines[0]


def _assert_nothing_complete(out: Path) -> None:
    assert not (out / "README.md").exists()
    assert not list(out.glob("*/*.parquet"))


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


_SPLITS_CARD = (
    "---\nconfigs:\n- config_name: default\n  data_files:\n"
    + "".join(f"  - split: {s}\n    path: {s}.jsonl\n" for s in ("train", "dev", "test"))
    + "---\n"
)


def _user_dataset(folder: Path, *, mutate=None, card: bool = True) -> Path:
    """A tiny user dataset: train/dev/test.jsonl (+ a card naming the splits, so `dev` stays `dev`)."""
    folder.mkdir()
    for split, n in (("train", 2), ("dev", 6), ("test", 2)):
        rows = [
            {"id": f"{split}/{i}", "relation": "r", "question": f"Q {split} {i}?", "answers": [f"A{i}"]}
            for i in range(n)
        ]
        if mutate is not None:
            rows = [mutate(split, i, dict(r)) for i, r in enumerate(rows)]
        _write_jsonl(folder / f"{split}.jsonl", rows)
    if card:
        (folder / "README.md").write_text(_SPLITS_CARD)
    return folder


class _Built:
    """Stands in for make_engine: records that an engine was built; the engine answers " A0"."""

    def __init__(self, scripted_engine):
        self.engines = []
        self.scripted_engine = scripted_engine

    def __call__(self, model, engine_args):
        engine = self.scripted_engine(answer=" A0", model_id=model)
        self.engines.append(engine)
        return engine


@pytest.fixture
def built(monkeypatch, scripted_engine):
    fake = _Built(scripted_engine)
    monkeypatch.setattr(factory, "make_engine", fake)
    return fake


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (annotate arguments, text the error line must contain)."""

    def no_answers_column(split, i, row):
        row["answer"] = row.pop("answers")
        return row

    def empty_answers(split, i, row):
        if split == "test" and i == 1:
            row["answers"] = []
        return row

    def answers_not_a_list(split, i, row):
        row["answers"] = row["answers"][0]
        return row

    return {
        "unknown relation": (["--relations", "P999"], "P999"),
        "unknown split": (["--splits", "train,bogus"], "bogus"),
        "limit 0": (["--limit-per-relation", "0"], "limit-per-relation"),
        "no EntityQuestions dir": (
            ["--dataset", "entityquestions", "--data-dir", "/nonexistent"],
            "/nonexistent",
        ),
        "data-dir with geo": (["--data-dir", str(tmp_path)], "--data-dir"),
        "missing column": (
            ["--dataset", str(_user_dataset(tmp_path / "nocol", mutate=no_answers_column))],
            "missing column(s) answers",
        ),
        "empty answer list": (
            ["--dataset", str(_user_dataset(tmp_path / "empty", mutate=empty_answers))],
            "empty answer list",
        ),
        "answers not a list": (
            ["--dataset", str(_user_dataset(tmp_path / "str", mutate=answers_not_a_list))],
            "list of strings",
        ),
        "no such dataset folder": (["--dataset", str(tmp_path / "missing")], "cannot load dataset"),
    }


BAD = [
    "unknown relation",
    "unknown split",
    "limit 0",
    "no EntityQuestions dir",
    "data-dir with geo",
    "missing column",
    "empty answer list",
    "answers not a list",
    "no such dataset folder",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_gives_one_error_line(case, tmp_path, capsys, built):
    args, needle = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    rc, stdout, stderr = _main(capsys, "annotate", "--output-dir", str(out), "--splits", "test", *args)
    _assert_one_error_line(stderr, rc, needle)
    assert "annotated dataset" not in stdout
    assert built.engines == []  # the questions are checked before a model is loaded
    _assert_nothing_complete(out)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--num-prompts", "0"], "num_prompts"),
        (["--temperature", "0"], "temperature"),
        (["--engine", "vllm"], "vllm"),
    ],
)
def test_bad_parameters_fail_before_any_engine(args, needle, tmp_path, capsys, monkeypatch):
    def no_engine(*a, **k):
        raise AssertionError("the engine must not be built")

    if args[0] != "--engine":
        monkeypatch.setattr(factory, "make_engine", no_engine)
    rc, _, stderr = _main(capsys, "annotate", "--output-dir", str(tmp_path / "out"), *args)
    _assert_one_error_line(stderr, rc, needle)
    _assert_nothing_complete(tmp_path / "out")


def test_user_dataset_folder_annotates(tmp_path, capsys, built):
    data = _user_dataset(tmp_path / "mine")
    out = tmp_path / "out"
    argv = ["annotate", "--dataset", str(data), "--output-dir", str(out), "--splits", "test"]
    rc, stdout, stderr = _main(capsys, *argv, "--model", "org/Tiny", "--num-prompts", "2", "--num-samples", "2")
    assert rc == 0, stderr
    assert f"annotated dataset: {out}" in stdout
    ds = load_dataset(str(out), "org--Tiny", split="test")
    assert ds["id"] == ["test/0", "test/1"]
    names = ds.features["slick_category"].names
    # the scripted engine always answers "A0": right for test/0 only
    assert [names[c] for c in ds["slick_category"]] == ["HighlyKnown", "Unknown"]


def test_user_dataset_folder_with_dev_file_names(tmp_path, capsys, built):
    data = _user_dataset(tmp_path / "plain", card=False)
    out = tmp_path / "out"
    argv = ["annotate", "--dataset", str(data), "--output-dir", str(out), "--splits", "test"]
    rc, _, stderr = _main(capsys, *argv, "--model", "org/Tiny", "--num-prompts", "2", "--num-samples", "2")
    assert rc == 0, stderr


def test_wrong_model_path_subprocess(tmp_path):
    out = tmp_path / "out"
    proc = _cli("annotate", "--model", "/nonexistent/model", "--output-dir", str(out), "--splits", "test")
    _assert_one_error_line(proc.stderr, proc.returncode, "/nonexistent/model")
    assert proc.stdout == ""
    _assert_nothing_complete(out)


def test_unknown_relation_subprocess(tmp_path):
    """The real CLI: the relation is checked before the model loads, so stderr is just the error."""
    out = tmp_path / "out"
    proc = _cli("annotate", "--relations", "P999", "--output-dir", str(out), "--splits", "test")
    _assert_one_error_line(proc.stderr, proc.returncode, "P999")
    assert proc.stdout == ""
    _assert_nothing_complete(out)


def test_disk_full_is_one_line_and_other_bugs_still_raise(monkeypatch, tmp_path, capsys):
    import errno

    import slick_hf.report.render as report

    def torch_save_on_a_full_disk(*args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos") from None

    monkeypatch.setattr(report, "write_report", torch_save_on_a_full_disk)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slick-hf: error: no space left on device") and err.count("\n") == 1

    monkeypatch.setattr(report, "write_report", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["report", str(tmp_path)])
