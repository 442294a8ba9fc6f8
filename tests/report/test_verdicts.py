"""Verdicts follow the synthetic truth: the paper's effect present -> reproduced; removed -> not."""

import json
import random
from pathlib import Path

import pytest
from report import test_report as synthetic

from slick_hf.report.render import write_report
from slick_hf.report.stats import Estimate
from slick_hf.report.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, judge
from slick_hf.runs import SWEEP_FILE
from slick_hf.variants.plan import plan_names, sweep_plan


def sweep_with_seeds(folder: Path, seeds: int = 3) -> Path:
    rng = random.Random(0)
    for name in plan_names(sweep_plan()):
        for seed in range(seeds):
            synthetic.write_run(folder, name + (f"-s{seed}" if seed else ""), rng)
    config = {"model": "m", "train_size": synthetic.SIZE, "epochs": float(synthetic.EPOCHS)}
    (folder / SWEEP_FILE).write_text(json.dumps({"config": config, "plan": plan_names(sweep_plan()), "runs": {}}))
    return folder


def verdict_of(folder: Path, finding: int, claim_word: str = "") -> str:
    report = json.loads((write_report(folder) / "report.json").read_text())
    assert report["seeds"] == [0, 1, 2]
    return next(v["verdict"] for v in report["verdicts"] if v["finding"] == finding and claim_word in v["claim"])


def test_unknown_effect_is_reproduced_then_not_when_removed(tmp_path, monkeypatch):
    assert verdict_of(sweep_with_seeds(tmp_path / "with"), 2, "in distribution") == REPRODUCED
    assert verdict_of(tmp_path / "with", 1) == REPRODUCED  # the synthetic runs fit Unknown later
    monkeypatch.setattr(synthetic, "TRUE", (40.0, 10.0, 0.0))
    assert verdict_of(sweep_with_seeds(tmp_path / "without"), 2, "in distribution") != REPRODUCED
    monkeypatch.setattr(synthetic, "TRUE", (40.0, 10.0, 20.0))
    assert verdict_of(sweep_with_seeds(tmp_path / "opposite"), 2, "in distribution") == NOT_REPRODUCED


def test_readme_shows_every_verdict(tmp_path):
    readme = (write_report(sweep_with_seeds(tmp_path / "runs")) / "README.md").read_text()
    assert "## Verdicts" in readme and readme.count("**reproduced**") + readme.count("**inconclusive**") >= 3
    assert "| D_unk0.50 | 3 | EARLY_STOP |" in (tmp_path / "runs" / "report" / "tables.md").read_text()


@pytest.mark.parametrize(
    ("low", "high", "positive", "expected"),
    [(0.01, 0.2, True, REPRODUCED), (-0.2, -0.01, True, NOT_REPRODUCED), (-0.1, 0.1, True, INCONCLUSIVE),
     (-0.2, -0.01, False, REPRODUCED)],
)  # fmt: skip
def test_judge_reads_the_interval(low, high, positive, expected):
    assert judge(Estimate((low + high) / 2, 0.0, low, high, 1, 1), positive) == expected


def test_an_inconclusive_verdict_says_how_many_seeds_would_decide_it():
    from slick_hf.report.verdicts import to_decide

    gap = Estimate(0.01, 0.01, -0.0096, 0.0296, 3, 600, 0.0)  # seeds' spread dominates
    decide = to_decide(gap, 0.0, 3, "seeds per variant", questions=600)
    assert decide["needed"] == 24 and "questions_needed" not in decide  # ((1.96 + 0.84) * 1)^2 * 3 = 23.5
    assert decide["text"].startswith("about 24 seeds per variant (now 3)")
    by_questions = to_decide(Estimate(0.01, 0.01, -0.0096, 0.0296, 3, 600, 0.01), 0.0, 3, "seeds", questions=600)
    assert by_questions["questions_needed"] == 4710  # the same growth, in test questions
    assert to_decide(Estimate(0.0, 0.01, -0.02, 0.02, 3, 600), 0.0, 3, "seeds")["needed"] is None


def test_report_gives_to_decide_only_for_inconclusive_verdicts(tmp_path):
    report = json.loads((write_report(sweep_with_seeds(tmp_path / "runs")) / "report.json").read_text())
    for v in report["verdicts"]:
        assert ("to_decide" in v) == (v["verdict"] == INCONCLUSIVE), v
    readme = (tmp_path / "runs" / "report" / "README.md").read_text()
    assert readme.count("To decide: about") == sum(v["verdict"] == INCONCLUSIVE for v in report["verdicts"])


def test_the_paper_column_matches_d_unk100_to_the_papers_d_unknown(tmp_path):
    write_report(sweep_with_seeds(tmp_path / "runs"))
    tables = (tmp_path / "runs" / "report" / "tables.md").read_text()
    row = next(line for line in tables.splitlines() if line.startswith("| D_unk1.00 (= D_Unknown) | 3 | EARLY_STOP"))
    assert row.rstrip(" |").endswith("37.5 / 95.6 / 52.9 / 6.5 / 0.6")
    for name in ("D_HighlyKnown", "D_MaybeKnown", "D_WeaklyKnown", "D_Natural"):
        line = next(line for line in tables.splitlines() if line.startswith(f"| {name} | 3 | CONVERGENCE"))
        assert line.count(" / ") == 4, line
