"""The recipe fine-tunes on a `slick-hf filter` output as it is (`variant: whole`), end to end, tiny."""

import json
from pathlib import Path

import pytest
from trl import ModelConfig, TrlParser

import slick_hf.engines.factory as factory
from slick_hf.cli.main import main
from slick_hf.configs import SlickScriptArguments, SlickSFTConfig
from slick_hf.recipe import run_recipe
from slick_hf.testing import hub_datasets as hub

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_recipe_fine_tunes_on_a_filtered_chat_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(factory, "make_engine", lambda model, args: hub.FactEngine(model))
    src = hub.write_messages(tmp_path / "chat")
    annotated, filtered = tmp_path / "annotated", tmp_path / "filtered"
    argv = ["annotate", "--dataset", str(src), "--splits", "train,validation", "--model", "t/facts"]
    assert main([*argv, "--output-dir", str(annotated), "--num-prompts", "2", "--num-shots", "2"]) == 0
    assert main(["filter", str(annotated), "--config", "t--facts", "--output-dir", str(filtered)]) == 0
    monkeypatch.undo()  # the recipe evaluates with the real engine
    script, training, model = TrlParser((SlickScriptArguments, SlickSFTConfig, ModelConfig)).parse_args_and_config(
        [
            "--config", str(ROOT / "recipes" / "smollm2-135m" / "sft" / "config_geo.yaml"),
            "--annotated_dataset", str(filtered), "--annotation_config", "t--facts", "--variant", "whole",
            "--num_train_epochs", "1", "--dev_limit", "4", "--max_length", "48", "--per_device_train_batch_size", "8",
            "--evaluate_splits", "dev", "--eval_max_new_tokens", "4", "--keep_weights", "false",
            "--output_dir", str(tmp_path / "runs"),
        ]
    )  # fmt: skip
    run_dir = run_recipe(script, training, model)
    assert run_dir.name == "D_Whole"
    summary = json.loads((run_dir / "variant" / "summary.json").read_text())
    assert summary["size"] == 10 and summary["categories"]["Unknown"] == 0  # 18 chat rows, 8 Unknown removed
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results) == {"early_stop", "convergence"} and results["early_stop"]["dev"]["count"] > 0
