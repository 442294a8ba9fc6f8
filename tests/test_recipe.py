"""Recipes: every YAML parses, the GPU recipe passes a dry run, a tiny CPU run goes end to end."""

import json
import os
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import write_annotated_folder
from datasets import Dataset, Features
from trl import ModelConfig, TrlParser

from slick_hf.configs import SlickScriptArguments, SlickSFTConfig, SweepArguments
from slick_hf.core.schema import SLICK_FEATURES
from slick_hf.core.slick import categorize
from slick_hf.data import load_questions
from slick_hf.recipe import run_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*/sft/config_*.yaml"))
GPU_RECIPE = ROOT / "recipes" / "Qwen2.5-7B" / "sft" / "config_entityquestions.yaml"


def parse(argv: list[str]):
    """A recipe's arguments, as `slick-hf recipe` parses them (a recipe may hold `sweep_*` settings too)."""
    *recipe, _sweep = TrlParser(
        (SlickScriptArguments, SlickSFTConfig, ModelConfig, SweepArguments)
    ).parse_args_and_config(argv)
    return recipe


@pytest.fixture(scope="module")
def annotated_dir(tmp_path_factory) -> Path:
    """A small geo pool with deterministic pseudo-categories, laid out like `slick-hf annotate` output."""
    out = tmp_path_factory.mktemp("annotated")
    dd, _ = load_questions("geo", splits=("train", "dev", "test"), limit_per_relation=8)
    ood, _ = load_questions("geo", splits=("test",), relations="ood", limit_per_relation=4)
    dd["test_ood"] = ood["test"]
    splits = {}
    for split, ds in dd.items():
        seen: Counter = Counter()
        kinds = []
        for rel in ds["relation"]:  # every relation gets every category
            kinds.append(seen[rel] % 4)
            seen[rel] += 1
        greedy = [(10, 5, 0, 0)[k] for k in kinds]
        sampled = [(0, 0, 3, 0)[k] for k in kinds]
        cats = [categorize(g / 10, s / 160) for g, s in zip(greedy, sampled, strict=True)]
        cols = {
            "slick_category": [SLICK_FEATURES["slick_category"].str2int(c) for c in cats],
            "slick_p_greedy": [g / 10 for g in greedy],
            "slick_p_sample": [s / 160 for s in sampled],
            "slick_greedy_answers": [[""] * 10] * len(ds),
            "slick_greedy_correct": greedy,
            "slick_samples_drawn": [160] * len(ds),
            "slick_samples_correct": sampled,
            "slick_generations": [170] * len(ds),
        }
        features = Features({**ds.features, **{name: SLICK_FEATURES[name] for name in cols}})
        splits[split] = Dataset.from_dict({**ds.to_dict(), **cols}, features=features)
    return write_annotated_folder(out, splits)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_every_recipe_parses(recipe: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated field in a recipe
        script, training, model = parse(["--config", str(recipe), "--use_cpu", "true"])
    assert training.metric_for_best_model == "exact_match"
    assert training.eval_strategy == "epoch"
    # EARLY_STOP: the Trainer's best checkpoint, or (no checkpoints) the best epoch kept in memory
    assert training.load_best_model_at_end == (training.save_strategy == "epoch")
    assert training.save_strategy in ("epoch", "no")
    assert script.variant == "ratio" and 0 <= script.unknown_ratio <= 1
    assert model.model_name_or_path
    assert "trust_remote_code" not in recipe.read_text() or "trust_remote_code: false" in recipe.read_text()


def test_gpu_recipe_has_paper_settings_and_matches_accelerate_configs() -> None:
    script, training, model = parse(["--config", str(GPU_RECIPE), "--use_cpu", "true"])
    assert training.bf16 and model.dtype == "bfloat16" and training.activation_checkpointing
    assert training.num_train_epochs == 50 and training.learning_rate == pytest.approx(1e-5)
    assert script.train_size == 6142
    for name in ("ddp.yaml", "zero3.yaml"):
        acc = yaml.safe_load((ROOT / "recipes" / "accelerate_configs" / name).read_text())
        assert acc["mixed_precision"] == "bf16"
        effective = training.per_device_train_batch_size * training.gradient_accumulation_steps * acc["num_processes"]
        assert effective == 128, name
    assert (
        yaml.safe_load((ROOT / "recipes" / "accelerate_configs" / "zero3.yaml").read_text())["deepspeed_config"][
            "zero_stage"
        ]
        == 3
    )


def test_gpu_recipe_dry_run_builds_the_trainer(annotated_dir: Path, tmp_path: Path, capsys) -> None:
    """Everything short of training, with the small local model standing in for the Hub one."""
    script, training, model = parse(
        [
            "--config", str(GPU_RECIPE), "--use_cpu", "true", "--dry_run", "true",
            "--model_name_or_path", "smollm2-135m", "--dtype", "float32",
            "--annotated_dataset", str(annotated_dir), "--annotation_config", "fixture",
            "--train_size", "8", "--output_dir", str(tmp_path), "--push_to_hub", "true",
        ]
    )  # fmt: skip
    run_dir = run_recipe(script, training, model)
    assert "dry run: trainer built" in capsys.readouterr().out
    assert (run_dir / "variant" / "train.parquet").exists()
    assert not list(run_dir.glob("checkpoint-*")) and not (run_dir / "model.safetensors").exists()
    assert training.push_to_hub is False  # pushing happens once, at the end, by slick-hf


def tiny_recipe_argv(annotated_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    """The CPU geo recipe on the fixture pool, shrunk to |D| = 8 and 2 epochs."""
    return [
        "--config", str(ROOT / "recipes" / "smollm2-135m" / "sft" / "config_geo.yaml"),
        "--annotated_dataset", str(annotated_dir), "--annotation_config", "fixture",
        "--train_size", "8", "--num_train_epochs", "2", "--dev_limit", "4", "--max_length", "48",
        "--per_device_train_batch_size", "8", "--output_dir", str(output_dir), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_tiny_cpu_recipe_end_to_end(annotated_dir: Path, tmp_path: Path, capfd) -> None:
    # with checkpoints (the GPU recipes' way); test_tiny_recipe_without_checkpoints covers the CPU recipes'
    argv = tiny_recipe_argv(annotated_dir, tmp_path, "--save_strategy", "epoch", "--load_best_model_at_end", "true")
    run_dir = run_recipe(*parse(argv))
    printed = capfd.readouterr()
    assert "{'loss'" not in printed.out + printed.err  # the loss is the training bar's postfix, not a dict line
    memory = json.loads((run_dir / "run.json").read_text())["memory"]
    assert set(memory) == {"annotate", "train", "evaluate"} and all(m["peak_rss_gb"] > 0.1 for m in memory.values())
    assert "peak memory (resident) and wall time per phase: annotate" in printed.out
    assert all(m["seconds"] > 0 for m in memory.values())
    dynamics = [json.loads(line) for line in (run_dir / "training_dynamics.jsonl").read_text().splitlines()]
    assert [round(r["epoch"]) for r in dynamics] == [1, 2]
    for row in dynamics:
        assert 0 <= row["train_fit_known"] <= 1 and 0 <= row["train_fit_unknown"] <= 1
        assert row["n_known"] + row["n_unknown"] == 8
    done = json.loads((run_dir / "train_complete.json").read_text())
    best = max(dynamics, key=lambda r: r["dev_exact_match"])
    assert done["best_dev_exact_match"] == pytest.approx(best["dev_exact_match"])
    assert done["best_epoch"] in (1.0, 2.0)
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results) == {"early_stop", "convergence"}
    for point in results.values():
        assert set(point) == {"test", "test_ood"}
        assert point["test"]["count"] == 32 and point["test_ood"]["count"] == 12  # 3 OOD relations x 4
    assert (run_dir / "convergence" / "model.safetensors").exists()
    assert not list(run_dir.glob("checkpoint-*"))
    card = (run_dir / "README.md").read_text()
    assert "EARLY_STOP" in card and "HighlyKnown" in card
    assert "hf_" not in card
    # a re-run skips every finished stage
    before = (run_dir / "results.json").stat().st_mtime_ns
    run_recipe(*parse(argv))
    assert (run_dir / "results.json").stat().st_mtime_ns == before
    # keep_weights false (the sweep's default) drops the weights and keeps everything else
    for _ in range(2):
        run_recipe(*parse([*argv, "--keep_weights", "false"]))
        assert not list(run_dir.rglob("*.safetensors")) and (run_dir / "convergence" / "config.json").exists()
        assert (run_dir / "results.json").stat().st_mtime_ns == before
        assert "weights were not kept" in (run_dir / "README.md").read_text()


def test_the_best_epoch_kept_is_restored(tmp_path: Path) -> None:
    import torch

    from slick_hf.train.trainer import SlickSFTTrainer

    model = torch.nn.Linear(3, 2)
    model.bias.requires_grad_(False)  # frozen: not kept (LoRA keeps only the adapters)
    args = SimpleNamespace(output_dir=str(tmp_path), process_index=0)
    trainer = SimpleNamespace(model=model, state=SimpleNamespace(epoch=1.0), best_weights=None, args=args)
    trainer.best_dev_exact_match = trainer.best_epoch = None
    SlickSFTTrainer.keep_if_best(trainer, 0.5)
    kept = model.weight.detach().clone()
    assert set(torch.load(trainer.best_weights, weights_only=True)) == {"weight"}
    assert trainer.best_weights.parent == tmp_path and trainer.best_weights.name.startswith(".")
    for epoch, dev in ((2.0, 0.4), (3.0, 0.5)):  # worse, then a tie: the earlier epoch stays
        with torch.no_grad():
            model.weight.add_(1.0)
        trainer.state.epoch = epoch
        SlickSFTTrainer.keep_if_best(trainer, dev)
    assert trainer.best_epoch == 1.0 and trainer.best_dev_exact_match == 0.5
    assert not torch.equal(model.weight, kept)
    SlickSFTTrainer.restore_best(trainer)
    assert torch.equal(model.weight, kept)
    assert list(tmp_path.iterdir()) == []  # restored, then removed
    trainer.state.epoch = 4.0
    SlickSFTTrainer.keep_if_best(trainer, 0.6)
    assert trainer.best_epoch == 4.0


@pytest.mark.slow
def test_tiny_recipe_without_checkpoints(annotated_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """save_strategy "no" (the CPU recipes): no checkpoint is written; EARLY_STOP is the best dev epoch."""
    import torch
    from safetensors.torch import load_file

    import slick_hf.recipe

    monkeypatch.setattr(slick_hf.recipe, "remove_checkpoints", lambda run_dir: None)  # so none can hide
    argv = tiny_recipe_argv(annotated_dir, tmp_path, "--num_train_epochs", "3", "--learning_rate", "1e-4")
    argv += ["--evaluate_splits", "test"]  # the CPU recipe's save_strategy "no"
    run_dir = run_recipe(*parse(argv))
    assert not list(run_dir.glob("checkpoint-*"))
    dynamics = [json.loads(line) for line in (run_dir / "training_dynamics.jsonl").read_text().splitlines()]
    best = max(dynamics, key=lambda r: r["dev_exact_match"])  # the first best epoch
    done = json.loads((run_dir / "train_complete.json").read_text())
    assert done["best_epoch"] == best["epoch"] and done["best_dev_exact_match"] == best["dev_exact_match"]
    early, last = (load_file(str(d / "model.safetensors")) for d in (run_dir, run_dir / "convergence"))
    same = all(torch.equal(early[k], last[k]) for k in early)
    assert same == (best["epoch"] == dynamics[-1]["epoch"])
    weights = [d / "model.safetensors" for d in (run_dir, run_dir / "convergence")]
    assert (weights[0].stat().st_ino == weights[1].stat().st_ino) == same  # the same model is on disk once
    umask = os.umask(0)
    os.umask(umask)
    assert all(w.stat().st_mode & 0o777 == 0o666 & ~umask for w in weights)  # weights follow the umask
    results = json.loads((run_dir / "results.json").read_text())
    assert results["early_stop"]["test"]["count"] == results["convergence"]["test"]["count"] == 32


def test_resume_skips_a_cut_short_checkpoint_and_its_dynamics(tmp_path: Path) -> None:
    from slick_hf.runs import DYNAMICS_FILE
    from slick_hf.train.run import keep_dynamics_up_to, last_checkpoint

    for step in (1, 2, 3):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "model.safetensors").write_text("w")
    for step in (1, 2):  # checkpoint-3 was cut short (a full disk): no trainer_state.json
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    dynamics = tmp_path / DYNAMICS_FILE
    dynamics.write_text("".join(json.dumps({"epoch": s, "step": s}) + "\n" for s in (1, 2, 3)) + '{"epoch": 4, "st')
    keep_dynamics_up_to(dynamics, 2)
    assert [json.loads(line)["step"] for line in dynamics.read_text().splitlines()] == [1, 2]
    assert last_checkpoint(tmp_path / "nothing-here") is None


@pytest.mark.slow
def test_tiny_lora_recipe_saves_merged_models(annotated_dir: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    argv = tiny_recipe_argv(
        annotated_dir, tmp_path, "--evaluate_splits", "test",
        "--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--learning_rate", "1e-3",
    )  # fmt: skip
    run_dir = run_recipe(*parse(argv))
    assert [json.loads(r)["epoch"] for r in (run_dir / "training_dynamics.jsonl").read_text().splitlines()] == [1, 2]
    from slick_hf.models import resolve_model

    q_proj = "model.layers.0.self_attn.q_proj.weight"  # a LoRA target: merged, so changed
    with safe_open(str(Path(resolve_model("smollm2-135m")) / "model.safetensors"), "pt") as f:
        base_q = f.get_tensor(q_proj)
    for folder in (run_dir, run_dir / "convergence"):  # plain (merged) checkpoints, no adapter left
        assert not (folder / "adapter_config.json").exists()
        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            names = list(f.keys())
            assert not (f.get_tensor(q_proj) == base_q).all()
        assert names and not any("lora" in n for n in names)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["early_stop"]["test"]["count"] == results["convergence"]["test"]["count"] == 32
