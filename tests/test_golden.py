"""Folders written by slick-hf 0.1.0, before the package layout changed, still load, build and report."""

import json
import shutil
from pathlib import Path

import pytest
from datasets import Dataset

from slick_hf.annotate.folder import load_annotated
from slick_hf.configs import SlickScriptArguments
from slick_hf.report.render import write_report
from slick_hf.runs import STOPPING_POINTS, load_runs, run_is_done
from slick_hf.variants import build_variant

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden_v0.1"


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    """A writable copy (reports are written next to the runs)."""
    shutil.copytree(GOLDEN, tmp_path / "golden")
    return tmp_path / "golden"


def test_annotated_folder_loads_with_every_split(golden: Path):
    annotated = load_annotated(str(golden / "annotated"), "smollm2-135m", split=None)
    assert {s: len(d) for s, d in annotated.items()} == {"train": 20, "dev": 12, "test": 8, "test_ood": 6}
    assert annotated["train"].features["slick_category"].names[0] == "HighlyKnown"


@pytest.mark.parametrize("run", ["D_unk0.50", "D_unk0.00"])
def test_variants_are_drawn_exactly_as_before(golden: Path, run: str):
    pool = load_annotated(str(golden / "annotated"), "smollm2-135m", split="train")
    old = Dataset.from_parquet(str(golden / "runs" / run / "variant" / "train.parquet"))
    ratio = float(run.removeprefix("D_unk"))
    spec = SlickScriptArguments(unknown_ratio=ratio, train_size=len(old)).variant_spec()
    assert spec.name == run
    new = build_variant(pool, spec)
    assert new.to_list() == old.to_list()


def test_runs_read_and_report_as_before(golden: Path):
    runs = load_runs(golden / "runs")
    assert sorted(runs.runs) == ["D_unk0.00", "D_unk0.50"]
    for run in runs.runs.values():
        assert run.complete and run.size == 8 and run.es_epoch == 2.0
        assert run_is_done(run.path) and set(run.results) == set(STOPPING_POINTS)
    out = write_report(golden / "runs", golden / "report")
    new = json.loads((out / "report.json").read_text())
    old = json.loads((golden / "report.json").read_text())
    for key in ("results", "complete", "dynamics"):
        assert new[key] == old[key], key
    for label, fit in old["equation1"].items():  # same points and coefficients; intervals are now cluster-robust
        assert new["equation1"][label]["n_points"] == fit["n_points"]
        assert new["equation1"][label]["fit"]["coef"] == pytest.approx(fit["fit"]["coef"])
    for split, rows in old["known_vs_d"].items():
        assert [{k: r[k] for k in row} for r, row in zip(new["known_vs_d"][split], rows, strict=True)] == rows
    assert (out / "README.md").read_text().startswith("# SliCK report")


def test_old_annotations_count_as_float32_and_no_other_dtype_reuses_them(golden: Path):
    from slick_hf.recipe import annotation_jobs

    script = SlickScriptArguments(
        annotations_dir=str(golden / "annotated"),
        relations="capital,city_country",
        annotate_limits="train=10,dev=6,test=4,test_ood=3",
    )
    assert all(job.is_done() for job in annotation_jobs(script, "smollm2-135m", "float32"))
    assert not any(job.is_done() for job in annotation_jobs(script, "smollm2-135m", "bfloat16"))
