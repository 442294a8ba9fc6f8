"""The bad-input battery: every subcommand and the metric, each case one `slick-hf: error: ...` line.

Each CLI case runs `main(argv)` in process and asserts exit 2, exactly one stderr line starting
`slick-hf: error: `, no traceback, the expected words in it, that no model or engine was built
(input errors fail before any work) and that it failed within a few seconds. A handful of cases run
again as a real process (one per subcommand at most) to show the process behaves the same.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import evaluate
import pytest

import slick_hf.engines.factory as factory
from slick_hf.cli.main import main
from slick_hf.evaluate.scoring import METRIC_DIR

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "golden_v0.1"
RECIPE = str(ROOT / "recipes" / "smollm2-135m" / "sft" / "config_geo.yaml")
FAST_S = 30  # generous on a shared, loaded machine: a model load alone takes longer than this


@dataclass
class Case:
    name: str
    argv: list[str]
    needle: str


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _user_dataset(folder: Path, change=None) -> str:
    """train/dev/test.jsonl of a tiny user dataset; `change(split, i, row)` edits rows."""
    folder.mkdir()
    for split, n in (("train", 2), ("dev", 6), ("test", 2)):
        rows = [{"id": f"{split}/{i}", "relation": "r", "question": f"Q {i}?", "answers": [f"A{i}"]} for i in range(n)]
        _jsonl(folder / f"{split}.jsonl", [change(split, i, r) if change else r for i, r in enumerate(rows)])
    return str(folder)


def _set(key, value, split="test", index=1):
    def change(s, i, row):
        if s == split and i == index:
            row[key] = value
        return row

    return change


def _annotated_copy(tmp: Path, name: str) -> Path:
    out = tmp / name
    shutil.copytree(GOLDEN / "annotated", out)
    return out


def _runs_copy(tmp: Path, name: str, edit=None) -> Path:
    out = tmp / name
    shutil.copytree(GOLDEN / "runs", out)
    if edit:
        edit(out / "D_unk0.50")
    return out


def _model_folder(tmp: Path, name: str, weights: bytes | None) -> str:
    folder = tmp / name
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)
    return str(folder)


def _truncated_safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}).encode()
    return len(header).to_bytes(8, "little") + header + b"\0" * 10  # 64 bytes promised, 10 written


def _cases(tmp: Path) -> list[Case]:
    a_file = tmp / "a-file"
    a_file.write_text("x")
    golden = str(GOLDEN / "annotated")
    out = str(tmp / "out")
    eq = str(GOLDEN / "runs")
    bad_utf8 = Path(_user_dataset(tmp / "utf8"))
    (bad_utf8 / "test.jsonl").write_bytes(
        b'{"id": "t", "relation": "r", "question": "Q \xff\xfe?", "answers": ["a"]}\n'
    )
    int_questions = tmp / "int_questions"
    int_questions.mkdir()
    for split in ("train", "dev"):
        rows = [{"id": f"{split}/{i}", "relation": "r", "question": i, "answers": [f"A{i}"]} for i in range(6)]
        _jsonl(int_questions / f"{split}.jsonl", rows)
    list_sweep = _runs_copy(tmp, "list_sweep")
    (list_sweep / "sweep.json").write_text("[1, 2]")
    bad_tokenizer = _model_folder(tmp, "bad_tokenizer", None)
    (Path(bad_tokenizer) / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}')
    corrupt = _annotated_copy(tmp, "corrupt")
    (corrupt / "smollm2-135m" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not really parquet")
    broken_card = _annotated_copy(tmp, "broken-card")
    (broken_card / "README.md").write_text("---\nconfigs: [unclosed\n---\n")
    bad_yaml = tmp / "bad.yaml"
    bad_yaml.write_text("model_name_or_path: x\n  learning_rate: : 3\n")
    not_utf8_yaml = tmp / "latin1.yaml"
    not_utf8_yaml.write_bytes(b"model_name_or_path: caf\xe9\n")
    empty_runs = tmp / "no-runs"
    empty_runs.mkdir()
    recipe = ["recipe", "--config", RECIPE, "--output_dir", out, "--annotations_dir", str(tmp / "ann")]
    sweep = ["sweep", "--config", RECIPE, "--output_dir", out, "--annotations_dir", str(tmp / "ann")]
    ev = ["evaluate", "--model", "smollm2-135m", "--annotated-dataset", golden, "--dataset-config", "smollm2-135m"]
    ann = ["annotate", "--output-dir", out, "--splits", "test"]
    ud = ["annotate", "--output-dir", out, "--splits", "test", "--dataset"]  # then a user dataset
    return [
        # annotate: flags
        Case("annotate chunk size 0", [*ann, "--chunk-size", "0"], "--chunk-size"),
        Case("annotate chunk size -1", [*ann, "--chunk-size", "-1"], "--chunk-size"),
        Case("annotate batch size 0", [*ann, "--batch-size", "0"], "--batch-size"),
        Case("annotate limit 0", [*ann, "--limit-per-relation", "0"], "--limit-per-relation"),
        Case("annotate limit not a number", [*ann, "--limit-per-relation", "ten"], "limit_per_relation"),
        Case("annotate bogus device", [*ann, "--device", "bogus"], "--device"),
        Case("annotate request seeds off for an in-process engine", [*ann, "--no-request-seeds"], "openai engine"),
        Case("annotate nan temperature", [*ann, "--temperature", "nan"], "temperature"),
        Case("annotate zero prompts", [*ann, "--num-prompts", "0"], "num_prompts"),
        Case("annotate bad dtype", [*ann, "--dtype", "float64"], "dtype"),
        Case("annotate unknown engine", [*ann, "--engine", "sglang"], "sglang"),
        Case("annotate server engine without endpoint", [*ann, "--engine", "tgi"], "--endpoint"),
        Case("annotate endpoint for in-process engine", [*ann, "--endpoint", "http://x"], "--endpoint"),
        Case(
            "annotate negative startup timeout",
            [*ann, "--engine", "tgi", "--endpoint", "http://x", "--startup-timeout", "-5"],
            "--startup-timeout",
        ),
        Case("annotate negative retries", [*ann, "--max-retries", "-1"], "--max-retries"),
        Case("annotate config name escapes", [*ann, "--config-name", "../../x"], "config name"),
        Case("annotate output is a file", ["annotate", "--output-dir", str(a_file)], "is a file"),
        Case("annotate output under a file", ["annotate", "--output-dir", str(a_file / "sub")], "cannot write"),
        Case("annotate unknown relation", [*ann, "--relations", "P999"], "P999"),
        Case("annotate unknown split", [*ann, "--splits", "train,bogus"], "bogus"),
        Case("annotate unknown flag", [*ann, "--no-such-flag", "1"], "--no-such-flag"),
        Case("annotate yaml config missing", [*ann, "--config", str(tmp / "nope.yaml")], "nope.yaml"),
        # annotate: data
        Case(
            "annotate no EntityQuestions folder",
            [*ann, "--dataset", "entityquestions", "--data-dir", str(tmp / "nonexistent")],
            "nonexistent",
        ),
        Case(
            "annotate EntityQuestions folder is a file",
            [*ann, "--dataset", "entityquestions", "--data-dir", str(a_file)],
            "is a file",
        ),
        Case("annotate data-dir with geo", [*ann, "--data-dir", str(tmp)], "--data-dir"),
        Case("annotate no such dataset", [*ann, "--dataset", str(tmp / "missing")], "cannot load dataset"),
        Case("annotate null question", [*ud, _user_dataset(tmp / "nq", _set("question", None))], "question"),
        Case("annotate null id", [*ud, _user_dataset(tmp / "nid", _set("id", None))], "id"),
        Case("annotate null relation", [*ud, _user_dataset(tmp / "nrel", _set("relation", None))], "relation"),
        Case(
            "annotate None alias",
            [*ann, "--dataset", _user_dataset(tmp / "nal", _set("answers", [None, "Cairo"]))],
            "null alias",
        ),
        Case("annotate alias 'the'", [*ud, _user_dataset(tmp / "the", _set("answers", ["the"]))], "to nothing"),
        Case("annotate empty answers", [*ud, _user_dataset(tmp / "ea", _set("answers", []))], "empty answer"),
        Case("annotate invalid UTF-8 dataset", [*ann, "--dataset", str(bad_utf8)], "UTF-8"),
        # annotate: model
        Case("annotate missing model folder", [*ann, "--model", str(tmp / "no-model")], "no-model"),
        Case("annotate model folder without config", [*ann, "--model", str(tmp)], "config.json"),
        Case(
            "annotate truncated safetensors",
            [*ann, "--model", _model_folder(tmp, "truncated", _truncated_safetensors())],
            "model.safetensors",
        ),
        Case(
            "annotate garbage safetensors",
            [*ann, "--model", _model_folder(tmp, "garbage", b"\xff" * 4)],
            "model.safetensors",
        ),
        # variants
        Case("variants without source", ["variants"], "name the annotated dataset"),
        Case("variants missing source", ["variants", str(tmp / "nope"), "--output-dir", out], "not found"),
        Case("variants output is a file", ["variants", golden, "--output-dir", str(a_file)], "is a file"),
        Case("variants unknown config", ["variants", golden, "--dataset-config", "bogus", "--output-dir", out],
             "bogus"),
        Case("variants unknown split", ["variants", golden, "--split", "bogus", "--output-dir", out], "bogus"),
        Case("variants unknown variant", ["variants", golden, "--variant", "bogus", "--output-dir", out], "bogus"),
        Case("variants empty variant", ["variants", golden, "--variant", ",", "--output-dir", out], "--variant"),
        Case("variants ratio not a number", ["variants", golden, "--unknown-ratio", "x", "--output-dir", out], "ratio"),
        Case("variants ratio above 1", ["variants", golden, "--unknown-ratio", "1.5", "--output-dir", out], "1.5"),
        Case("variants size 0", ["variants", golden, "--size", "0", "--output-dir", out], "--size"),
        Case("variants size too large", ["variants", golden, "--size", "100000", "--output-dir", out], "100000"),
        Case("variants bad shares", ["variants", golden, "--shares", "bogus", "--output-dir", out], "bogus"),
        Case("variants corrupt parquet", ["variants", str(corrupt), "--output-dir", out], "parquet"),
        Case("variants broken card YAML", ["variants", str(broken_card), "--output-dir", out], "README.md"),
        # filter
        Case("filter without output", ["filter", golden], "--output-dir"),
        Case("filter missing source", ["filter", str(tmp / "nope"), "--output-dir", out], "nope"),
        Case("filter output is a file", ["filter", golden, "--output-dir", str(a_file)], "is a file"),
        Case("filter unknown category", ["filter", golden, "--drop", "Bogus", "--output-dir", out], "Bogus"),
        Case("filter unknown split", ["filter", golden, "--splits", "bogus", "--output-dir", out], "bogus"),
        Case("filter unknown config", ["filter", golden, "--dataset-config", "bogus", "--output-dir", out], "bogus"),
        # recipe
        Case("recipe limits not a number", [*recipe, "--annotate_limits", "train=abc"], "annotate_limits"),
        Case("recipe limits zero", [*recipe, "--annotate_limits", "train=0"], "annotate_limits"),
        Case("recipe limits unknown split", [*recipe, "--annotate_limits", "trian=3"], "trian"),
        Case("recipe malformed YAML", ["recipe", "--config", str(bad_yaml)], "YAML"),
        Case("recipe YAML not UTF-8", ["recipe", "--config", str(not_utf8_yaml)], "UTF-8"),
        Case("recipe YAML missing", ["recipe", "--config", str(tmp / "none.yaml")], "none.yaml"),
        Case("recipe mistyped value", [*recipe, "--learning_rate", "fast"], "learning_rate"),
        Case("recipe unknown variant", [*recipe, "--variant", "bogus"], "bogus"),
        Case("recipe ratio above 1", [*recipe, "--unknown_ratio", "2"], "unknown_ratio"),
        Case("recipe train size 0", [*recipe, "--train_size", "0"], "size |D|"),
        Case("recipe zero prompts", [*recipe, "--annotate_num_prompts", "0"], "num_prompts"),
        Case("recipe missing annotated dataset", [*recipe, "--annotated_dataset", str(tmp / "nope")], "nope"),
        # sweep
        Case("sweep zero seeds", [*sweep, "--sweep-seeds", "0"], "--sweep-seeds"),
        Case("sweep ratios not numbers", [*sweep, "--sweep-ratios", "a,b"], "--sweep-ratios"),
        Case("sweep ratio above 1", [*sweep, "--sweep-ratios", "0,2"], "--sweep-ratios"),
        Case("sweep unknown variant kind", [*sweep, "--sweep-variants", "bogus"], "bogus"),
        Case("sweep limits not a number", [*sweep, "--annotate_limits", "dev=x"], "annotate_limits"),
        Case("sweep malformed YAML", ["sweep", "--config", str(bad_yaml)], "YAML"),
        # evaluate
        Case("evaluate without a model", ["evaluate", "--annotated-dataset", golden, "--output-dir", out], "--model"),
        Case("evaluate without data", ["evaluate", "--model", "m", "--output-dir", out], "--annotated-dataset"),
        Case("evaluate without output", ["evaluate", "--model", "m", "--annotated-dataset", golden], "--output-dir"),
        Case("evaluate zero max tokens", [*ev, "--output-dir", out, "--max-new-tokens", "0"], "--max-new-tokens"),
        Case("evaluate unknown split", [*ev, "--output-dir", out, "--splits", "bogus"], "no split bogus"),
        Case("evaluate empty splits", [*ev, "--output-dir", out, "--splits", ","], "--splits"),
        Case("evaluate output is a file", [*ev, "--output-dir", str(a_file)], "is a file"),
        Case(
            "evaluate missing data",
            ["evaluate", "--model", "m", "--annotated-dataset", str(tmp / "nope"), "--output-dir", out],
            "not found",
        ),
        Case(
            "evaluate corrupt parquet",
            ["evaluate", "--model", "m", "--annotated-dataset", str(corrupt), "--output-dir", out],
            "parquet",
        ),
        Case(
            "evaluate truncated safetensors",
            [*ev[:1], "--model", _model_folder(tmp, "trunc2", _truncated_safetensors()), *ev[3:], "--output-dir", out],
            "model.safetensors",
        ),
        # report
        Case("report without runs", ["report"], "RUNS_DIR"),
        Case("report missing runs folder", ["report", str(tmp / "nope")], "nope"),
        Case("report folder without runs", ["report", str(empty_runs)], "no run folders"),
        Case("report output is a file", ["report", eq, "--output-dir", str(a_file)], "is a file"),
        Case("report sweep.json is a list", ["report", str(list_sweep)], "holds a JSON list"),
        Case(
            "annotate integer questions",
            ["annotate", "--dataset", str(int_questions), "--splits", "train", "--output-dir", out],
            "is int, not text",
        ),
        Case(
            "annotate corrupt tokenizer.json",
            ["annotate", "--model", bad_tokenizer, "--dataset", "geo", "--output-dir", out],
            "not a valid tokenizer file",
        ),
        # stability
        Case("stability without output", ["stability", golden], "--output-dir"),
        Case("stability bad target", ["stability", golden, "--output-dir", out, "--target", "1.5"], "--target"),
        Case(
            "stability compare missing folder",
            ["stability", golden, "--output-dir", out, "--compare", str(tmp / "nope")],
            "nope",
        ),
        Case("filter bad min stability", ["filter", golden, "--output-dir", out, "--min-stability", "2"], "stability"),
        # push
        Case("push without repo", ["push", golden], "push"),
        Case("push missing folder", ["push", str(tmp / "nope"), "org/x"], "no such folder"),
        Case("push a file", ["push", str(a_file), "org/x"], "no such folder"),
        Case("push bad repo type", ["push", golden, "org/x", "--repo-type", "bucket"], "bucket"),
        Case("push bad repo id", ["push", golden, "not a repo id!"], "repo"),
        # the CLI itself
        Case("unknown command", ["annotat"], "unknown command"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Case]:
    tmp = tmp_path_factory.mktemp("bad")
    return {c.name: c for c in _cases(tmp)}


class ModelLoaded(AssertionError):
    """An input error went as far as building an engine or a trainer."""


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if an engine, model or trainer is built."""

    def refuse(*args, **kwargs):
        raise ModelLoaded("an engine, model or trainer was built before the bad input was caught")

    monkeypatch.setattr(factory, "engine_class", refuse)
    import slick_hf.train.trainer as trainer

    monkeypatch.setattr(trainer, "build_trainer", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def assert_one_error_line(rc: int, err: str, needle: str) -> str:
    """Exit 2 and exactly one stderr line, `slick-hf: error: ...`, containing `needle`."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("slick-hf: error: "), err
    assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _names() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return [c.name for c in _cases(Path(tmp))]


def test_engine_vllm_without_vllm_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    import slick_hf.engines.vllm.engine as vllm_engine

    monkeypatch.setattr(vllm_engine, "vllm_python", lambda: None)
    rc = main(["annotate", "--output-dir", str(tmp_path / "out"), "--splits", "test", "--engine", "vllm"])
    assert_one_error_line(rc, capsys.readouterr().err, "make install-vllm")
    assert not any((tmp_path / "out").rglob("*"))  # nothing written


@pytest.mark.parametrize("name", _names())
def test_bad_input_is_one_line_before_any_work(name, cases, capsys, no_work):
    case = cases[name]
    start = time.monotonic()
    rc = main(case.argv)
    elapsed = time.monotonic() - start
    cap = capsys.readouterr()
    assert_one_error_line(rc, cap.err, case.needle)
    assert cap.out == "", cap.out
    assert elapsed < FAST_S, f"{name}: {elapsed:.0f} s"


def test_the_battery_is_large_and_covers_every_command():
    names = _names()
    assert len(names) >= 60
    from slick_hf.cli.main import COMMANDS

    for command in COMMANDS:
        assert any(n.startswith(command) for n in names), command


# ---------------------------------------------------------------- report: damaged run files


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("results.json", b"[1, 2]"),
        ("results.json", b'{"early_stop": {"test": "high"}}'),
        ("run.json", b'{"x": "caf\xe9"}'),
        ("training_dynamics.jsonl", b'[1]\n"x"\n'),
    ],
)
def test_report_names_a_damaged_run_file_and_still_writes_a_whole_report(file, content, tmp_path, capsys, caplog):
    runs = _runs_copy(tmp_path, "runs", lambda r: (r / file).write_bytes(content))
    rc = main(["report", str(runs)])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err, err
    warned = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("D_unk0.50: ") and file in line for line in warned), warned
    assert (runs / "report" / "README.md").is_file()


def test_a_failing_report_leaves_the_previous_one_whole(tmp_path, capsys, monkeypatch):
    import slick_hf.report.render as render

    runs = _runs_copy(tmp_path, "runs")
    assert main(["report", str(runs)]) == 0
    before = {p.name: p.read_bytes() for p in (runs / "report").iterdir()}

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render, "readme_markdown", fail)  # after the plots are written
    assert main(["report", str(runs)]) == 2
    assert {p.name: p.read_bytes() for p in (runs / "report").iterdir()} == before
    assert not list(runs.glob(".report.slick-*"))


# ---------------------------------------------------------------- the metric


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(str(METRIC_DIR), keep_in_memory=True)


METRIC_CASES = {
    "None alias, position 0": ({"predictions": ["x", "y"], "references": [[None, "x"], ["y"]]}, "position 0"),
    "None alias, position 1": ({"predictions": ["x", "y"], "references": [["x"], ["y", None]]}, "position 1"),
    "int alias": ({"predictions": ["x", "y"], "references": [["x"], ["y", 3]]}, "position 1"),
    "None prediction, position 0": ({"predictions": [None, "y"], "references": [["x"], ["y"]]}, "position 0"),
    "None prediction, position 1": ({"predictions": ["x", None], "references": [["x"], ["y"]]}, "position 1"),
    "int prediction": ({"predictions": ["x", 3], "references": [["x"], ["y"]]}, "position 1"),
    "None reference": ({"predictions": ["x", "y"], "references": [["x"], None]}, "position 1"),
    "predictions=None": ({"predictions": None, "references": [["x"]]}, "predictions must be a list"),
    "references=None": ({"predictions": ["x"], "references": None}, "references must be a list"),
    "mismatched lengths": ({"predictions": ["x", "y"], "references": [["x"]]}, "2 predictions but 1 references"),
    "alias normalising to nothing": ({"predictions": ["", "y"], "references": [["the"], ["y"]]}, "position 0"),
    "empty alias": ({"predictions": ["x", ""], "references": [["x"], ["y", ""]]}, "position 1"),
}


@pytest.mark.parametrize("name", list(METRIC_CASES))
def test_metric_rejects_bad_input_in_one_line_in_any_position(name, metric):
    kwargs, needle = METRIC_CASES[name]
    with pytest.raises(ValueError) as info:
        metric.compute(**kwargs)
    message = str(info.value)
    assert needle in message and "\n" not in message, message


def test_metric_add_checks_like_compute(metric):
    with pytest.raises(ValueError, match="position 0"):
        metric.add(prediction=None, reference=["x"])
    with pytest.raises(ValueError, match="position 0"):
        metric.add(prediction="x", reference=["x", None])


# ---------------------------------------------------------------- the journal: wrong shapes, edited categories


@pytest.fixture
def scripted(monkeypatch, scripted_engine):
    """make_engine builds a scripted engine (no model) that answers " A0"; the built ones are listed."""
    built = []

    def make(model, engine_args):
        built.append(scripted_engine(answer=" A0", model_id=model))
        return built[-1]

    monkeypatch.setattr(factory, "make_engine", make)
    return built


def _annotate_argv(data: str, out: Path, *extra: str) -> list[str]:
    return ["annotate", "--dataset", data, "--output-dir", str(out), "--model", "org/Tiny",
            "--num-prompts", "2", "--num-samples", "2", "--chunk-size", "1", *extra]  # fmt: skip


def test_journal_lines_of_the_wrong_shape_or_edited_are_not_trusted(tmp_path, capsys, caplog, scripted):
    from datasets import load_dataset

    data = _user_dataset(tmp_path / "data")
    out = tmp_path / "out"
    argv = _annotate_argv(data, out, "--splits", "test")
    assert main(argv) == 0, capsys.readouterr().err
    journal = next((out / ".slick_work").rglob("*.jsonl"))
    lines = journal.read_text().splitlines()
    assert len(lines) == 2  # two chunks of one row: test/0 (right: HighlyKnown) and test/1 (Unknown)
    edited = json.loads(lines[1])
    edited["results"][0]["slick_category"] = "HighlyKnown"  # the counts say Unknown
    journal.write_text("\n".join(['{"chunk": "zero"}', "[1, 2]", lines[0], json.dumps(edited), ""]))
    shutil.rmtree(out / "org--Tiny")  # force the assembly again (the folder would be done otherwise)
    (out / "README.md").unlink()
    capsys.readouterr()
    assert main(argv) == 0
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "3 line(s) unreadable or inconsistent" in warned, warned
    assert len(scripted[-1].requests) > 0  # chunk 1 annotated again, chunk 0 kept
    ds = load_dataset(str(out), "org--Tiny", split="test")
    names = ds.features["slick_category"].names
    assert [names[c] for c in ds["slick_category"]] == ["HighlyKnown", "Unknown"]


# ---------------------------------------------------------------- crash consistency of re-annotation

STEPS = ["staged", "parquet:test", "parquet:train", "meta", "card", "written", "swapped"]


def _version(out: Path) -> int:
    """Rows per split of a complete annotated folder (card, metadata and files agree); fails otherwise."""
    from slick_hf.annotate.folder import config_problems, load_annotated

    assert config_problems(out, "org--Tiny") == []
    meta = json.loads((out / "org--Tiny" / "slick_annotation.json").read_text())
    rows = {}
    for split in ("test", "train"):
        ds = load_annotated(str(out), "org--Tiny", split=split)  # through the card, as `datasets` reads it
        assert len(ds) == meta["splits"][split]["num_examples"] == meta["files"][split]["rows"]
        rows[split] = len(ds)
    assert len(set(rows.values())) == 1, rows
    return rows["test"]


def _killed_at(step: str, argv: list[str]) -> int:
    import multiprocessing

    def child():
        os.environ["SLICK_HF_FAULT_AT"] = step
        try:
            code = main(argv)
        finally:
            os._exit(0 if "code" in locals() and code == 0 else 1)

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(300)
    return proc.exitcode


def test_re_annotation_killed_at_every_write_step_leaves_old_or_new_and_a_rerun_finishes(tmp_path, capsys, scripted):
    from slick_hf.annotate.job import AnnotateJob

    data = _user_dataset(tmp_path / "data")
    old = tmp_path / "old"
    assert main(_annotate_argv(data, old, "--splits", "test,train", "--limit-per-relation", "1")) == 0
    assert _version(old) == 1
    for step in STEPS:
        out = tmp_path / step.replace(":", "-")
        shutil.copytree(old, out)
        argv = _annotate_argv(data, out, "--splits", "test,train")
        assert _killed_at(step, argv) == 86, step
        assert _version(out) == (2 if step == "swapped" else 1), step
        assert main(argv) == 0, step
        assert _version(out) == 2 and not list(tmp_path.glob(f".{out.name}.slick-*")), step
        job = AnnotateJob(dataset=data, output_dir=out, model="org/Tiny", splits=["test"])
        assert job.config_name is None
    capsys.readouterr()


def test_is_done_checks_rows_and_fingerprints_not_just_files(tmp_path, capsys, scripted):
    from slick_hf.annotate.folder import config_problems

    data = _user_dataset(tmp_path / "data")
    out = tmp_path / "out"
    assert main(_annotate_argv(data, out, "--splits", "test,train")) == 0
    assert config_problems(out, "org--Tiny") == []
    train, test = (out / "org--Tiny" / f"{s}-00000-of-00001.parquet" for s in ("train", "test"))
    shutil.copy(train, test)  # same rows, other content: only the sha256 tells
    assert "sha256" in config_problems(out, "org--Tiny")[0]
    capsys.readouterr()
    rc = main(["variants", str(out), "--split", "test", "--output-dir", str(tmp_path / "v")])
    assert_one_error_line(rc, capsys.readouterr().err, "sha256")
    requests = len(scripted[-1].requests)
    assert main(_annotate_argv(data, out, "--splits", "test,train")) == 0  # not done: assembled again
    assert config_problems(out, "org--Tiny") == [] and len(scripted) == 2
    assert len(scripted[-1].requests) == 0 < requests  # from the journal: nothing generated again


# ---------------------------------------------------------------- the real process

ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
SUBPROCESS = [
    "annotate null question",
    "variants corrupt parquet",
    "recipe limits zero",
    "evaluate truncated safetensors",
    "filter unknown category",
]


@pytest.mark.parametrize("name", SUBPROCESS)
def test_the_real_process_prints_only_the_error_line(name, cases):
    case = cases[name]
    proc = subprocess.run(
        [sys.executable, "-m", "slick_hf.cli", *case.argv], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert_one_error_line(proc.returncode, proc.stderr, case.needle)
    assert proc.stdout == ""
