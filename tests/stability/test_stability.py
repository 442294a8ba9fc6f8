"""Label stability end to end with the real SmolLM2-135M: the columns, `slick-hf stability`, `--compare`,
`filter --min-stability`, and float32 labels that do not depend on the CPU thread count."""

import json
import shutil
from pathlib import Path

import datasets
import pytest

from slick_hf.annotate.rows import adaptive_rounds, annotate_rows, exemplar_pools_by_relation
from slick_hf.cli.main import main
from slick_hf.core.evidence import Evidence, adaptive_cost, budget_distribution
from slick_hf.core.predictive import split_stability
from slick_hf.core.schema import EVIDENCE_COLUMNS
from slick_hf.core.slick import CATEGORIES, SlickConfig

CONFIG = "smollm2-135m"
BUDGET = ["--num-prompts", "4", "--num-samples", "4", "--max-new-tokens", "12"]
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden_v0.1" / "annotated"


def _annotate(out: Path, *extra: str) -> Path:
    argv = ["annotate", "--model", CONFIG, "--dataset", "geo", "--splits", "test", "--limit-per-relation", "6"]
    assert main([*argv, *BUDGET, "--output-dir", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def annotations(tmp_path_factory) -> dict[str, Path]:
    """24 geo test rows annotated three ways: float32 (seed 0 and seed 1) and bfloat16 (seed 0)."""
    root = tmp_path_factory.mktemp("stability")
    return {
        "fp32": _annotate(root / "fp32", "--dtype", "float32"),
        "fp32_seed1": _annotate(root / "fp32_seed1", "--dtype", "float32", "--seed", "1"),
        "bf16": _annotate(root / "bf16", "--dtype", "bfloat16"),
    }


def _split(folder: Path) -> datasets.Dataset:
    return datasets.load_dataset(str(folder), CONFIG, split="test", download_mode="force_redownload")


def _rows(folder: Path) -> list[dict]:
    return _split(folder).to_list()


def test_annotated_folders_carry_the_evidence_and_stability_columns(annotations):
    rows = _rows(annotations["fp32"])
    assert len(rows) == 24
    every = [Evidence.from_row(row) for row in rows]
    expected, _ = split_stability(every, [CATEGORIES[r["slick_category"]] for r in rows], 4)
    assert [r["slick_label_stability"] for r in rows] == pytest.approx(expected)
    for row in rows:
        evidence = Evidence.from_row(row)
        assert len(evidence.greedy) == len(evidence.drawn) == len(evidence.correct) == 4
        assert sum(row["slick_prompt_greedy_correct"]) == row["slick_greedy_correct"]
        assert sum(evidence.drawn) == row["slick_samples_drawn"]
        assert sum(evidence.correct) == row["slick_samples_correct"]
        assert 0.0 <= row["slick_label_stability"] <= 1.0
        assert evidence.category() == CATEGORIES[row["slick_category"]]
        # the full budget's expected adaptive cost is what the annotation spent
        assert adaptive_cost(evidence, 4, 4, adaptive_rounds(4)) == row["slick_generations"]
    card = (annotations["fp32"] / "README.md").read_text()
    assert "Label stability (`slick_label_stability` >= 0.9: firm)" in card
    assert "float32, the reproducible mode" in card
    assert "reproducible with the same thread count" in (annotations["bf16"] / "README.md").read_text()


def test_stability_report_with_another_seed(annotations, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["stability", str(annotations["fp32"]), "--compare", str(annotations["fp32_seed1"])]
    assert main([*argv, "--output-dir", str(out)]) == 0
    assert "cheapest budget" in capsys.readouterr().out
    record = json.loads((out / "stability.json").read_text())
    assert {p.name for p in out.iterdir()} >= {"README.md", "stability.json", "saturation.png", "calibration.png"}
    cells = {(c["prompts"], c["samples"]): c for c in record["saturation"]}
    assert set(cells) == {(k, m) for k in range(1, 5) for m in (1, 2, 4)}
    assert cells[4, 4]["agreement"]["value"] == 1.0  # the full budget agrees with itself
    rows = _rows(annotations["fp32"])
    assert cells[4, 4]["generations"] == pytest.approx(sum(r["slick_generations"] for r in rows) / 24)
    expected = sum(
        budget_distribution(Evidence.from_row(r), 1, 4).get(CATEGORIES[r["slick_category"]], 0) for r in rows
    )
    assert cells[1, 4]["agreement"]["value"] == pytest.approx(expected / 24)
    rec = record["recommendation"]
    assert rec["agreement"]["value"] >= 0.95 and rec["generations"] == min(
        c["generations"] for c in cells.values() if c["agreement"]["value"] >= 0.95
    )
    assert sum(record["stability"][c]["n"] for c in CATEGORIES) == 24
    assert record["independent_draw"] is True
    compare = record["compare"]
    assert compare["differences"] == {"seed": [0, 1]}
    assert sum(sum(row.values()) for row in compare["confusion"].values()) == compare["shared_rows"] == 24
    assert sum(b["observed"]["n"] for b in record["calibration"]["bins"]) == 24
    assert [d["prompts"] for d in record["draw_agreement"]] == [1, 2, 3, 4]
    assert record["draw_agreement"][-1]["agreement"]["value"] == pytest.approx(compare["agreement"]["value"])
    readme = (out / "README.md").read_text()
    assert "## Budget recommendation" in readme and "### Calibration" in readme


def test_compare_fp32_with_bf16_gives_a_confusion_matrix_over_the_shared_rows(annotations, tmp_path):
    out = tmp_path / "report"
    argv = ["stability", str(annotations["fp32"]), "--compare", str(annotations["bf16"]), "--target", "0.9"]
    assert main([*argv, "--output-dir", str(out)]) == 0
    record = json.loads((out / "stability.json").read_text())
    compare = record["compare"]
    assert compare["differences"]["dtype"] == ["float32", "bfloat16"]
    assert sum(sum(row.values()) for row in compare["confusion"].values()) == compare["shared_rows"] == 24
    assert compare["flips"] == 24 - sum(compare["confusion"][c][c] for c in CATEGORIES) == len(compare["flipped_rows"])
    assert record["independent_draw"] is False and "calibration" not in record
    assert record["recommendation"]["target"] == 0.9


def test_filter_min_stability_drops_only_firm_labels(annotations, tmp_path):
    out = tmp_path / "filtered"
    drop = ",".join(CATEGORIES[1:])
    argv = ["filter", str(annotations["fp32"]), "--splits", "test", "--drop", drop, "--min-stability", "0.9"]
    assert main([*argv, "--output-dir", str(out)]) == 0
    rows = _rows(annotations["fp32"])
    firm = [r for r in rows if r["slick_category"] > 0 and r["slick_label_stability"] >= 0.9]
    kept = datasets.load_dataset(str(out), "default", split="test", download_mode="force_redownload")
    assert sorted(kept["id"]) == sorted(r["id"] for r in rows if r not in firm)
    meta = json.loads((out / "slick_filter.json").read_text())
    uncertain = sum(by.get("kept_uncertain", 0) for rel in meta["counts"]["test"].values() for by in rel.values())
    assert uncertain == sum(1 for r in rows if r["slick_category"] > 0 and r["slick_label_stability"] < 0.9)
    assert "kept as uncertain" in (out / "README.md").read_text()


def test_an_annotation_from_before_label_stability_says_what_it_cannot_compute(tmp_path, capsys):
    old = shutil.copytree(GOLDEN, tmp_path / "old")
    assert main(["stability", str(old), "--output-dir", str(tmp_path / "report")]) == 0
    record = json.loads((tmp_path / "report" / "stability.json").read_text())
    assert record["per_prompt_sample_counts"] is False
    assert record["stability"]["Unknown"]["n"] == 0 < record["stability"]["Unknown"]["not_computable"]
    assert "made before per-prompt sample counts were stored" in (tmp_path / "report" / "README.md").read_text()
    argv = ["filter", str(old), "--output-dir", str(tmp_path / "f"), "--min-stability", "0.9"]
    assert main(argv) == 2
    assert "slick_label_stability" in capsys.readouterr().err


def test_bad_stability_inputs_are_one_error_line(annotations, tmp_path, capsys):
    from conftest import write_annotated_folder

    test = _split(annotations["fp32"])
    renamed = test.map(lambda r: {"id": "other/" + r["id"]})
    write_annotated_folder(tmp_path / "other_rows", {"train": renamed, "test": renamed})
    write_annotated_folder(tmp_path / "no_answers", {"train": test.remove_columns("slick_greedy_answers")})
    cases = [
        (
            [str(annotations["fp32"]), "--compare", str(tmp_path / "other_rows"), "--compare-config", "fixture"],
            "share no",
        ),
        ([str(tmp_path / "no_answers")], "missing column(s) slick_greedy_answers"),
        ([str(annotations["fp32"]), "--target", "0"], "--target"),
        ([str(annotations["fp32"]), "--splits", "train"], "no split train"),
    ]
    for args, needle in cases:
        capsys.readouterr()
        assert main(["stability", *args, "--output-dir", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("slick-hf: error: ") and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_float32_labels_do_not_depend_on_the_thread_count(geo_dev):
    import torch

    from slick_hf.data import load_questions
    from slick_hf.engines.fast.engine import TransformersEngine

    config = SlickConfig(num_prompts=3, num_samples=4, max_new_tokens=12)
    rows = load_questions("geo", splits=("test",), limit_per_relation=4)[0]["test"].to_list()
    pools = exemplar_pools_by_relation(geo_dev, sorted({r["relation"] for r in rows}), config)
    engine = TransformersEngine("smollm2-135m", dtype="float32")
    threads = torch.get_num_threads()
    try:
        results = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            engine.cache.clear()
            results[n] = annotate_rows(rows, pools, engine, config)
    finally:
        torch.set_num_threads(threads)
        engine.close()
    assert results[1] == results[2]
    assert len({r["slick_category"] for r in results[1]}) > 1  # not a trivial agreement
    assert EVIDENCE_COLUMNS[0] in results[1][0]
