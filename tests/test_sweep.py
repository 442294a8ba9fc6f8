"""The sweep: its plan, one |D| for every variant, infeasible variants named, resumed and reported runs."""

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from conftest import write_annotated_folder
from datasets import Dataset, Features
from report.test_report import write_run
from trl import ModelConfig, TrlParser

from slick_hf import recipe
from slick_hf.cli.main import main
from slick_hf.configs import SlickScriptArguments, SlickSFTConfig
from slick_hf.core.schema import SLICK_FEATURES
from slick_hf.core.slick import CATEGORIES
from slick_hf.data import load_questions
from slick_hf.errors import SlickError
from slick_hf.runs import SWEEP_FILE
from slick_hf.sweep import run_sweep
from slick_hf.variants import VARIANTS, default_size, pool_counts
from slick_hf.variants.plan import choose_size, infeasible_at, plan_names, sweep_plan

ROOT = Path(__file__).resolve().parents[1]
GEO_RECIPE = ROOT / "recipes" / "smollm2-135m" / "sft" / "config_geo.yaml"
P_GREEDY = {"HighlyKnown": 1.0, "MaybeKnown": 0.5, "WeaklyKnown": 0.0, "Unknown": 0.0}
P_SAMPLE = {"HighlyKnown": 0.0, "MaybeKnown": 0.0, "WeaklyKnown": 0.1, "Unknown": 0.0}


def _categorised(ds: Dataset, no_weakly: str | None = None) -> Dataset:
    """Every relation gets every category in turn; `no_weakly` gets Unknown instead of WeaklyKnown."""
    seen: Counter = Counter()
    cats = []
    for rel in ds["relation"]:
        cat = CATEGORIES[seen[rel] % 4]
        seen[rel] += 1
        cats.append("Unknown" if rel == no_weakly and cat == "WeaklyKnown" else cat)
    cols = {
        "slick_category": [SLICK_FEATURES["slick_category"].str2int(c) for c in cats],
        "slick_p_greedy": [P_GREEDY[c] for c in cats],
        "slick_p_sample": [P_SAMPLE[c] for c in cats],
        "slick_greedy_answers": [[""] * 10] * len(ds),
        "slick_greedy_correct": [int(10 * P_GREEDY[c]) for c in cats],
        "slick_samples_drawn": [160] * len(ds),
        "slick_samples_correct": [int(160 * P_SAMPLE[c]) for c in cats],
        "slick_generations": [170] * len(ds),
    }
    features = Features({**ds.features, **{name: SLICK_FEATURES[name] for name in cols}})
    return Dataset.from_dict({**ds.to_dict(), **cols}, features=features)


def _pool(no_weakly: str | None = None) -> Dataset:
    dd, _ = load_questions("geo", splits=("train",), limit_per_relation=12)
    return _categorised(dd["train"], no_weakly)


@pytest.fixture(scope="module")
def annotated_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("annotated")
    dd, _ = load_questions("geo", splits=("train", "dev", "test"), limit_per_relation=12)
    splits = {s: _categorised(d, no_weakly="continent") for s, d in dd.items()}
    return write_annotated_folder(out, splits)


def _parse(argv: list[str]):
    return TrlParser((SlickScriptArguments, SlickSFTConfig, ModelConfig)).parse_args_and_config(argv)


def _args(annotated_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config", str(GEO_RECIPE), "--annotated_dataset", str(annotated_dir),
        "--annotation_config", "fixture", "--output_dir", str(out), "--num_train_epochs", "4", *extra,
    ]  # fmt: skip


def test_plan_has_every_variant_of_the_spec_once() -> None:
    names = plan_names(sweep_plan())
    assert names == [
        "D_unk0.00", "D_unk0.25", "D_unk0.50", "D_unk0.75", "D_unk1.00",
        "D_Known_unk0.25", "D_Known_unk0.50", "D_Known_unk0.75",
        "D_HighlyKnown", "D_MaybeKnown", "D_WeaklyKnown", "D_Unknown", "D_Natural", "D_IDK_unk0.50",
    ]  # fmt: skip
    assert {v for v, _ in sweep_plan()} == set(VARIANTS)


def test_one_size_for_all_variants() -> None:
    pool = _pool()
    script = SlickScriptArguments(train_size=None)
    common = default_size(pool, variants=VARIANTS)
    size, runnable, infeasible, how = choose_size(pool, script.variant_spec(), sweep_plan())
    assert size == common and not infeasible and len(runnable) == 14 and "default_size" in how
    script.train_size = 8  # feasible for every variant: used as given
    assert choose_size(pool, script.variant_spec(), sweep_plan())[0] == 8
    script.train_size = common + 1  # the given |D| is kept; the runs infeasible at it are named and dropped
    size, runnable, infeasible, how = choose_size(pool, script.variant_spec(), sweep_plan())
    assert size == common + 1 and infeasible and len(runnable) + len(infeasible) == 14
    assert not infeasible_at(pool, script.variant_spec(), runnable, common + 1)
    assert f"infeasible at it: {', '.join(infeasible)}" in how
    script.train_size = 10 * common  # no run at all: one clear error
    with pytest.raises(SlickError, match=f"no planned variant is feasible at train_size {10 * common}"):
        choose_size(pool, script.variant_spec(), sweep_plan())


def test_paper_shares_give_the_papers_size_at_which_every_variant_is_feasible() -> None:
    pool = _pool()
    script = SlickScriptArguments(train_size=None, variant_shares="paper")
    size, runnable, infeasible, how = choose_size(pool, script.variant_spec(), sweep_plan())
    mins = [min(counts.values()) for counts in pool_counts(pool).values()]
    assert size == sum(mins) == default_size(pool, "paper") and not infeasible and len(runnable) == 14
    assert "'paper'" in how


def test_a_variant_no_size_supports_is_named_and_skipped() -> None:
    pool = _pool(no_weakly="continent")
    size, runnable, infeasible, how = choose_size(
        pool, SlickScriptArguments(train_size=None).variant_spec(), sweep_plan()
    )
    assert list(infeasible) == ["D_WeaklyKnown"]
    assert "continent" in infeasible["D_WeaklyKnown"] and "--sweep-relations" in infeasible["D_WeaklyKnown"]
    assert len(runnable) == 13 and ("WeaklyKnown", 0.5) not in runnable
    assert size == default_size(pool, variants=[v for v in VARIANTS if v != "WeaklyKnown"])
    size, runnable, infeasible, how = choose_size(pool, SlickScriptArguments(train_size=8).variant_spec(), sweep_plan())
    assert size == 8 and list(infeasible) == ["D_WeaklyKnown"] and len(runnable) == 13


def test_sweep_runs_resumes_and_reports(annotated_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    calls, tries = [], Counter()

    def fake_run_recipe(script, training, model_args):
        name = script.variant_spec().name
        calls.append((name, script.train_size, training.output_dir, script.keep_weights))
        tries[name] += 1
        if name == "D_MaybeKnown" and tries[name] == 1:
            raise RuntimeError("boom")
        write_run(Path(training.output_dir), name, random.Random(len(calls)))
        return Path(training.output_dir) / name

    monkeypatch.setattr(recipe, "run_recipe", fake_run_recipe)
    script, training, model = _parse(_args(annotated_dir, tmp_path))
    with pytest.raises(SlickError, match="1 run\\(s\\) failed: D_MaybeKnown"):
        run_sweep(script, training, model, command="test")
    out = capsys.readouterr().out
    assert "SKIPPED D_WeaklyKnown: infeasible" in out
    size = calls[0][1]
    folder = tmp_path / f"sweep-D{size}-ep4"
    assert {c[1] for c in calls} == {size} and {c[2] for c in calls} == {str(folder)}
    assert len(calls) == 13 and "D_WeaklyKnown" not in {c[0] for c in calls}
    assert {c[3] for c in calls} == {False}  # a sweep drops each run's weights once evaluated
    state = json.loads((folder / SWEEP_FILE).read_text())
    assert state["runs"]["D_MaybeKnown"]["status"] == "failed" and "boom" in state["runs"]["D_MaybeKnown"]["error"]
    assert state["runs"]["D_unk0.50"]["status"] == "done" and "D_WeaklyKnown" in state["infeasible"]
    assert state["config"]["train_size"] == size and state["command"] == "test"
    readme = (folder / "report" / "README.md").read_text()
    assert "**D_WeaklyKnown**" in readme and "**D_MaybeKnown**" in readme
    # A rerun skips finished runs and retries the failed one.
    calls.clear()
    assert main(["sweep", *_args(annotated_dir, tmp_path), "--sweep-keep-weights"]) == 0
    assert [c[0] for c in calls] == ["D_MaybeKnown"] and calls[0][3] is True
    assert "D_unk0.00: already done" in capsys.readouterr().out
    assert "**D_MaybeKnown**" not in (folder / "report" / "README.md").read_text()
    # Other settings in the same folder would mix runs: refused.
    script, training, model = _parse(_args(annotated_dir, tmp_path, "--learning_rate", "0.5"))
    with pytest.raises(SlickError, match="other settings"):
        run_sweep(script, training, model)
    # --report-only through the CLI rewrites the report and trains nothing.
    (folder / "report" / "README.md").unlink()
    calls.clear()
    assert main(["sweep", *_args(annotated_dir, tmp_path), "--report-only"]) == 0
    assert not calls and (folder / "report" / "README.md").exists()


def test_sweep_cli_errors(annotated_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["sweep", *_args(annotated_dir, tmp_path), "--report-only"]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert main(["sweep", *_args(annotated_dir, tmp_path), "--sweep-ratios", "0,2"]) == 2
    assert "--sweep-ratios" in capsys.readouterr().err
    assert main(["sweep", *_args(annotated_dir, tmp_path), "--sweep-only", "D_Bogus"]) == 2
    assert "unknown run(s) D_Bogus" in capsys.readouterr().err


def test_sweep_relations_and_kinds_restrict_the_pool_and_plan(annotated_dir: Path, tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fake_run_recipe(script, training, model_args):
        calls.append(script)
        name = script.variant_spec().name
        pool = recipe.ensure_annotations(script, "unused")
        assert "continent" not in set(pool["train"]["relation"]) and "continent" in set(pool["test"]["relation"])
        write_run(Path(training.output_dir), name, random.Random(0))

    monkeypatch.setattr(recipe, "run_recipe", fake_run_recipe)
    keep = ["capital", "city_country", "city_state"]
    script, training, model = _parse(_args(annotated_dir, tmp_path))
    folder = run_sweep(script, training, model, variants=["WeaklyKnown", "natural"], relations=keep, report=False)
    assert folder.name.endswith("-capital+city_country+city_state")
    assert [c.variant_spec().name for c in calls] == ["D_WeaklyKnown", "D_Natural"]
    assert calls[0].annotated_dataset == str(folder / "pool") and calls[0].annotation_config == "fixture"
    state = json.loads((folder / SWEEP_FILE).read_text())
    assert state["config"]["train_relations"] == keep and state["plan"] == ["D_WeaklyKnown", "D_Natural"]
    assert not state["infeasible"]
    with pytest.raises(SlickError, match="not in the train split"):
        run_sweep(*_parse(_args(annotated_dir, tmp_path)), relations=["nowhere"])
    with pytest.raises(SlickError, match="unknown variant kind"):
        run_sweep(*_parse(_args(annotated_dir, tmp_path)), variants=["bogus"])


def test_sweep_seeds_run_every_variant_with_its_own_draw_and_training_seed(
    annotated_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    calls = []

    def fake_run_recipe(script, training, model_args):
        name = script.variant_spec().name
        calls.append((name, script.variant_seed, training.seed))
        write_run(Path(training.output_dir), name, random.Random(len(calls)))
        return Path(training.output_dir) / name

    monkeypatch.setattr(recipe, "run_recipe", fake_run_recipe)
    script, training, model = _parse(_args(annotated_dir, tmp_path))
    folder = run_sweep(script, training, model, variants=["ratio"], seeds=3, report=False)
    names = sorted(c[0] for c in calls)
    assert len(calls) == 15 and "D_unk0.50" in names and "D_unk0.50-s1" in names and "D_unk0.50-s2" in names
    assert {(c[1], c[2] - training.seed) for c in calls} == {(0, 0), (1, 1), (2, 2)}
    plan = json.loads((folder / SWEEP_FILE).read_text())["plan"]
    assert len(plan) == 15 and plan.count("D_unk0.25-s2") == 1


@pytest.mark.parametrize("annotated_in", ["bfloat16", "float32"])
def test_report_only_looks_for_annotations_in_the_recipes_dtype(tmp_path: Path, capsys, annotated_in: str) -> None:
    """`make report` on a sweep annotated in bf16 (`dtype: auto` on an AMX CPU) must find those annotations."""
    from slick_hf.testing.hub_datasets import FactEngine

    recipe_args = ["--config", str(GEO_RECIPE), "--annotations_dir", str(tmp_path / "annotations")]
    recipe_args += ["--annotate_limits", "train=2,dev=6,test=1,test_ood=1", "--annotate_num_prompts", "2"]
    recipe_args += ["--annotate_num_shots", "2", "--output_dir", str(tmp_path / "runs")]
    script, _, _ = _parse(recipe_args)
    for job in recipe.annotation_jobs(script, "smollm2-135m", annotated_in):
        job.run(FactEngine())
    for dtype in ("bfloat16", "float32"):
        assert main(["sweep", *recipe_args, "--dtype", dtype, "--report-only"]) == 2
        err = capsys.readouterr().err
        if dtype == annotated_in:  # found: the only thing missing is the sweep itself
            assert "no sweep folder" in err
        else:
            assert "annotations of this recipe are not there yet" in err
