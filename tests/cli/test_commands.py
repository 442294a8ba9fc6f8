"""One argument convention for every command (YAML --config, snake and kebab flags, positionals),
and `slick-hf evaluate` on a real model."""

import json
from pathlib import Path

import pytest

from slick_hf.cli.main import COMMANDS, main

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden_v0.1"
RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "smollm2-135m" / "sft" / "config_geo.yaml")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_and_rejects_an_unknown_flag_in_one_line(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "--output_dir" in capsys.readouterr().out or command == "push"
    rc, _, err = run(capsys, command, "--no-such-flag", "1")
    assert rc == 2 and err.count("\n") == 1 and err.startswith("slick-hf: error: ")


def test_report_takes_a_positional_a_yaml_config_and_both_spellings(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in ("D_unk0.00", "D_unk0.50"):
        (runs / name).symlink_to(GOLDEN / "runs" / name, target_is_directory=True)
    assert run(capsys, "report", str(runs), "--output-dir", str(tmp_path / "kebab"))[0] == 0
    assert run(capsys, "report", str(runs), "--output_dir", str(tmp_path / "snake"))[0] == 0
    config = tmp_path / "report.yaml"
    config.write_text(f"runs_dir: {runs}\noutput_dir: {tmp_path / 'yaml'}\n")
    assert run(capsys, "report", "--config", str(config))[0] == 0
    for out in ("kebab", "snake", "yaml"):
        assert (tmp_path / out / "report.json").is_file(), out
    rc, _, err = run(capsys, "report", "--config", str(tmp_path / "nope.txt"))
    assert rc == 2 and "YAML file" in err


def test_variants_dataset_config_flag_its_old_spellings_and_a_yaml_file(tmp_path, capsys):
    annotated = str(GOLDEN / "annotated")
    argv = ["variants", annotated, "--dataset-config", "smollm2-135m", "--output-dir", str(tmp_path / "a")]
    rc, out, err = run(capsys, *argv)
    assert rc == 0 and "D_unk0.50" in out and not err
    for old in ("--config", "--annotation-config"):
        rc, out, err = run(capsys, "variants", annotated, old, "smollm2-135m", "--output-dir", str(tmp_path / old))
        assert rc == 0 and "D_unk0.50" in out
        assert err.splitlines() == [f"slick-hf: warning: {old} NAME is deprecated here; use --dataset-config NAME"]
    config = tmp_path / "variants.yml"
    config.write_text(f"source: {annotated}\ndataset_config: smollm2-135m\nunknown_ratio: '0,1'\nsize: 4\n")
    rc, out, _ = run(capsys, "variants", "--config", str(config), "--output_dir", str(tmp_path / "b"))
    assert rc == 0 and sorted(p.name for p in (tmp_path / "b").iterdir()) == ["D_unk0.00", "D_unk1.00"]
    summary = json.loads((tmp_path / "b" / "D_unk1.00" / "summary.json").read_text())
    assert summary["size"] == 4 and summary["categories"]["Unknown"] == 4


def test_recipe_yaml_sets_every_slick_parameter():
    from slick_hf.cli.parsing import parse
    from slick_hf.configs import RECIPE_ARGUMENTS

    root = Path(__file__).resolve().parents[2]
    script, _, _ = parse(
        RECIPE_ARGUMENTS,
        ["--config", str(root / "recipes/smollm2-135m/sft/config_geo.yaml"), "--annotate-num-samples", "8"],
        "recipe",
    )
    slick = script.slick_config()
    assert slick.num_samples == 8 and slick.num_prompts == 10 and slick.temperature == 0.5


def test_evaluate_scores_a_model_per_category(tmp_path, capsys):
    out = tmp_path / "eval"
    rc, stdout, err = run(
        capsys,
        "evaluate",
        "--model", "smollm2-135m",
        "--annotated-dataset", str(GOLDEN / "annotated"),
        "--dataset-config", "smollm2-135m",
        "--splits", "test,test_ood",
        "--output-dir", str(out),
        "--batch-size", "16",
    )  # fmt: skip
    assert rc == 0, err
    record = json.loads((out / "results.json").read_text())
    assert record["engine"]["engine"] == "transformers" and record["annotation_config"] == "smollm2-135m"
    test, ood = record["results"]["test"], record["results"]["test_ood"]
    assert test["count"] == 8 and ood["count"] == 6
    assert sum(test[f"count_{c}"] for c in ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")) == 8
    predictions = (out / "predictions_test.jsonl").read_text().splitlines()
    assert len(predictions) == 8 and all("prediction" in json.loads(p) for p in predictions)
    answered = sum(json.loads(p)["prediction"].strip() != "" for p in predictions)
    assert answered > 0 and "exact match % per SliCK category" in stdout
    rc, _, err = run(capsys, "evaluate", "--model", "smollm2-135m", "--annotated-dataset", str(GOLDEN / "annotated"),
                     "--dataset-config", "smollm2-135m", "--splits", "bogus",
                     "--output-dir", str(tmp_path / "x"))  # fmt: skip
    assert rc == 2 and "no split bogus" in err


def _bad_inputs(tmp: Path) -> list[tuple[str, list[str], str]]:
    a_file = tmp / "a-file"
    a_file.write_text("x")
    golden = str(GOLDEN / "annotated")
    return [
        ("chunk size 0", ["annotate", "--chunk-size", "0"], "--chunk-size"),
        ("batch size 0", ["annotate", "--batch-size", "0"], "--batch-size"),
        ("limit 0", ["annotate", "--limit-per-relation", "0"], "--limit-per-relation"),
        ("bogus device", ["annotate", "--device", "bogus"], "--device"),
        ("nan temperature", ["annotate", "--temperature", "nan"], "temperature"),
        ("negative timeout", ["annotate", "--engine", "tgi", "--endpoint", "http://x", "--startup-timeout", "-5"],
         "--startup-timeout"),
        ("negative retries", ["annotate", "--max-retries", "-1"], "--max-retries"),
        ("config name escapes", ["annotate", "--config-name", "../../x"], "config name"),
        ("output is a file", ["annotate", "--output-dir", str(a_file)], "is a file"),
        ("bad dtype", ["annotate", "--dtype", "float64"], "dtype"),
        ("variants output is a file",
         ["variants", golden, "--dataset-config", "smollm2-135m", "--output-dir", str(a_file)], "is a file"),
        ("report output is a file", ["report", str(GOLDEN / "runs"), "--output-dir", str(a_file)], "is a file"),
        ("evaluate without a model", ["evaluate", "--annotated-dataset", golden, "--output-dir", str(tmp)], "--model"),
        ("push a missing folder", ["push", str(tmp / "nope"), "org/x"], "no such folder"),
        ("zero seeds", ["sweep", "--config", RECIPE, "--sweep-seeds", "0"], "--sweep-seeds"),
        ("unknown command", ["annotat"], "unknown command"),
        ("bad limits", ["recipe", "--config", RECIPE, "--annotations_dir", str(tmp / "a"),
                        "--annotate_limits", "train=abc", "--output_dir", str(tmp / "o")], "annotate_limits"),
    ]  # fmt: skip


def test_bad_inputs_are_one_line_before_any_work(tmp_path, capsys):
    for name, argv, needle in _bad_inputs(tmp_path):
        rc, _, err = run(capsys, *argv)
        assert rc == 2, (name, err)
        assert err.count("\n") == 1 and err.startswith("slick-hf: error: ") and needle in err, (name, err)
