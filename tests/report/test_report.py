"""The report: Equation 1 regression, and a report built from hand-written run folders."""

import json
import random
from pathlib import Path

import numpy as np
import pytest

from slick_hf.cli.main import main
from slick_hf.core.slick import CATEGORIES
from slick_hf.errors import SlickError
from slick_hf.report.render import write_report
from slick_hf.report.stats import fit_equation1, ols, t_quantile
from slick_hf.runs import SWEEP_FILE, load_runs
from slick_hf.variants.plan import plan_names, sweep_plan
from slick_hf.variants.spec import parse_variant_name

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIZE, EPOCHS = 20, 4
TRUE = (40.0, 10.0, -20.0)  # b0, b_kn, b_unk of the synthetic runs


# ---------------------------------------------------------------------------------------------
# Regression.


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.975, 1, 12.7062047362), (0.975, 2, 4.30265272975), (0.975, 10, 2.22813885196), (0.975, 23, 2.06865761042),
     (0.025, 5, -2.57058183564), (0.95, 1000, 1.64637881), (0.5, 7, 0.0)],
)  # fmt: skip
def test_t_quantile_matches_tables(p, df, expected) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-6)


def test_ols_recovers_known_coefficients_and_intervals_cover_them() -> None:
    rng = np.random.default_rng(0)
    n = 200
    kn, unk = rng.uniform(0, 1, n), rng.uniform(0, 0.6, n)
    acc = TRUE[0] + TRUE[1] * kn + TRUE[2] * unk + rng.normal(0, 1.5, n)
    fit = fit_equation1(acc, kn, unk)
    assert fit.names == ["b0", "b_kn", "b_unk"] and fit.n == n and fit.df == n - 3
    for name, truth in zip(fit.names, TRUE, strict=True):
        t = fit.term(name)
        assert t["ci"][0] < truth < t["ci"][1], (name, t)
        assert t["coef"] == pytest.approx(truth, abs=4 * t["se"])
    assert fit.ci_excludes_zero("b_unk") and fit.ci_excludes_zero("b_kn")
    assert 0.9 < fit.r2 < 1.0
    # Same standard errors as the textbook formula.
    X = np.column_stack([np.ones(n), kn, unk])
    resid = acc - X @ np.array(fit.coef)
    cov = resid @ resid / (n - 3) * np.linalg.inv(X.T @ X)
    assert fit.se == pytest.approx(np.sqrt(np.diag(cov)).tolist())


def test_ci_coverage_is_nominal_over_many_noisy_fits() -> None:
    rng = np.random.default_rng(1)
    covered, trials = 0, 300
    for _ in range(trials):
        kn, unk = rng.uniform(0, 1, 12), rng.uniform(0, 1, 12)
        acc = TRUE[0] + TRUE[1] * kn + TRUE[2] * unk + rng.normal(0, 3.0, 12)
        lo, hi = fit_equation1(acc, kn, unk).term("b_unk")["ci"]
        covered += lo < TRUE[2] < hi
    assert 0.90 <= covered / trials <= 0.99  # 95% intervals with t quantiles (9 df)


def test_ols_without_residual_degrees_of_freedom_has_no_intervals() -> None:
    fit = ols(
        np.column_stack([np.ones(3), [0.0, 1.0, 2.0], [1.0, 0.0, 3.0]]), np.array([1.0, 2.0, 3.0]), ["a", "b", "c"]
    )
    assert fit.df == 0 and fit.se == [None] * 3 and fit.ci_excludes_zero("b") is None
    with pytest.raises(SlickError):
        ols(np.zeros((0, 3)), np.zeros(0), ["a", "b", "c"])


# ---------------------------------------------------------------------------------------------
# A synthetic runs folder, in the formats `run_recipe` writes.


def _metrics(acc: float, n: int = 40, answered: float = 1.0) -> dict:
    """A slick_exact_match result dict (fractions) with every key the metric returns."""
    per = {"HighlyKnown": min(acc + 0.4, 1.0), "MaybeKnown": acc, "WeaklyKnown": acc / 2, "Unknown": acc / 10}
    m = {"exact_match": acc, "count": n, "answered": answered, "exact_match_answered": min(acc / answered, 1.0)}
    for c in (*CATEGORIES, "Known"):
        v = per.get(c, acc)
        m |= {f"exact_match_{c}": v, f"count_{c}": n // 4, f"answered_{c}": answered, f"exact_match_answered_{c}": v}
    return m


def write_run(folder: Path, name: str, rng: random.Random, skip: tuple[str, ...] = ()) -> None:
    """One run folder: dynamics whose test accuracy follows TRUE's Equation 1 plus noise."""
    kind, ratio = parse_variant_name(name)
    if kind in ("ratio", "known", "idk"):
        n_unk = round(ratio * SIZE)
    else:
        n_unk = {"Unknown": SIZE, "natural": SIZE // 2}.get(kind, 0)
    n_kn = SIZE - n_unk
    if kind == "known":
        n_unk = 0
    size = n_kn + n_unk
    run = folder / name
    (run / "variant").mkdir(parents=True)
    cats = {c: 0 for c in CATEGORIES} | {"Unknown": n_unk, "HighlyKnown": n_kn}
    summary = {"size": size, "categories": cats, "known": n_kn, "relations": {"capital": size}, "idk": 0}
    (run / "variant" / "summary.json").write_text(json.dumps(summary | {"unknown_share": n_unk / max(size, 1)}))
    rows, accs = [], {}
    for epoch in range(1, EPOCHS + 1):
        fk, fu = min(1.0, 0.4 + 0.2 * epoch), min(1.0, 0.25 * (epoch - 1))
        a_kn, a_unk = round(fk * n_kn), round(fu * n_unk)
        rows.append(
            {
                "epoch": float(epoch),
                "step": epoch * 2,
                "dev_exact_match": (TRUE[0] + TRUE[1] * a_kn / SIZE + TRUE[2] * a_unk / SIZE + rng.gauss(0, 1)) / 100,
                "train_fit": (a_kn + a_unk) / size,
                "train_fit_known": a_kn / n_kn if n_kn else None,
                "train_fit_unknown": a_unk / n_unk if n_unk else None,
                "n_known_fit": a_kn,
                "n_unknown_fit": a_unk,
                "n_known": n_kn,
                "n_unknown": n_unk,
                "train_size": size,
            }
        )
        accs[epoch] = (TRUE[0] + TRUE[1] * a_kn / SIZE + TRUE[2] * a_unk / SIZE + rng.gauss(0, 1)) / 100
    best = 2.0
    if "dynamics" not in skip:
        (run / "training_dynamics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "train_complete.json").write_text(
        json.dumps({"best_epoch": best, "best_dev_exact_match": 0.4, "epochs": float(EPOCHS), "log_history": []})
    )
    answered = 0.6 if kind == "idk" else 1.0
    results = {
        p: {"test": _metrics(accs[e], answered=answered), "test_ood": _metrics(accs[e] * 0.9, 20, answered)}
        for p, e in (("early_stop", int(best)), ("convergence", EPOCHS))
    }
    if "results" not in skip:
        (run / "results.json").write_text(json.dumps(results, indent=2))
        info = {"run_name": name, "base_model": "smollm2-135m", "variant": name, "variant_summary": summary}
        (run / "run.json").write_text(json.dumps(info | {"results": results}))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sweep-D20-ep4"
    rng = random.Random(0)
    names = plan_names(sweep_plan())
    for name in names:
        if name == "D_WeaklyKnown":
            continue  # infeasible, see sweep.json
        if name == "D_Known_unk0.75":
            continue  # missing
        write_run(folder, name, rng, skip=("results",) if name == "D_MaybeKnown" else ())
    (folder / SWEEP_FILE).write_text(
        json.dumps(
            {
                "config": {"model": "smollm2-135m", "train_size": SIZE, "epochs": float(EPOCHS)},
                "plan": names,
                "infeasible": {"D_WeaklyKnown": INFEASIBLE},
                "runs": {},
            }
        )
    )
    return folder


# as `variants.build` words it: long (the pool per relation), the fix at the end
INFEASIBLE = (
    "cannot build D_WeaklyKnown (variant 'WeaklyKnown', |D| = 12, shares 'pool'): capital needs 5 WeaklyKnown, "
    "has 2. Pool per relation: "
    + ", ".join(f"relation_{i}: HK {i}, MK {2 * i}, WK {i + 1}, Unk {3 * i}" for i in range(8))
    + ". Largest |D| that works for this variant: 4 (pass size=4)"
)


def test_parse_variant_name() -> None:
    assert parse_variant_name("D_unk0.25") == ("ratio", 0.25)
    assert parse_variant_name("D_Known_unk0.50") == ("known", 0.5)
    assert parse_variant_name("D_IDK_unk0.50") == ("idk", 0.5)
    assert parse_variant_name("D_Natural") == ("natural", None)
    assert parse_variant_name("D_WeaklyKnown") == ("WeaklyKnown", None)
    assert parse_variant_name("whatever")[0] == "other"


def test_report_builds_from_synthetic_runs(runs_dir: Path, tmp_path: Path) -> None:
    out = write_report(runs_dir, tmp_path / "report")
    readme = (out / "README.md").read_text()
    tables = (out / "tables.md").read_text()
    for png in ("accuracy_vs_unknown.png", "train_fit.png", "dev_accuracy.png", "equation1.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, png
        assert f"]({png})" in readme
    # Missing, infeasible and unfinished runs are named, not fatal.
    assert "**D_Known_unk0.75**" in readme and "Missing" in readme
    assert f"**D_WeaklyKnown** ({INFEASIBLE})" in readme and "infeasible" in readme  # whole, with its fix
    assert "**D_MaybeKnown** (no results.json" in readme
    # The per-category table, with the paper's numbers next to ours.
    assert "| D_HighlyKnown | 1 | EARLY_STOP |" in tables and "40.5 / 98.7 / 60.1 / 9 / 0.6" in tables
    assert "| D_Natural | 1 | CONVERGENCE |" in tables
    assert "D versus D_Known" in tables and "| 0% (D_Known = D) |" in tables
    assert "I don't know" in tables
    report = json.loads((out / "report.json").read_text())
    assert report["missing"] == ["D_Known_unk0.75"] and "D_WeaklyKnown" in report["infeasible"]
    # Equation 1 on test points recovers the synthetic coefficients (noise 1 point).
    fit = report["equation1"]["test"]["fit"]
    assert fit["n"] == 2 * 10  # 12 complete runs, less D_IDK (excluded) and D_Known_unk... 2 points each
    b = dict(zip(fit["names"], fit["coef"], strict=True))
    assert b["b_unk"] == pytest.approx(TRUE[2], abs=5) and b["b_kn"] == pytest.approx(TRUE[1], abs=5)
    lo, hi = fit["ci_low"][2], fit["ci_high"][2]
    assert lo < TRUE[2] < hi and hi < 0
    assert report["equation1"]["dev"]["fit"]["n"] == 4 * 11  # every epoch; D_MaybeKnown has dynamics
    assert "b_unk = " in readme and "the interval excludes 0" in readme
    assert "as in the paper" in readme
    # Sentences follow the numbers: accuracy falls with more Unknown examples here.
    assert "In-distribution test accuracy at CONVERGENCE falls from" in readme
    assert "D_IDK answers 60.0% of questions" in readme
    assert "Scale of noise: the in-distribution test has 40 questions, so one question is 2.5 points" in readme
    assert "the out-of-distribution test has 20 questions" in readme
    lines = (out / "equation1_points.csv").read_text().splitlines()
    assert lines[0].startswith("fit,run,at,epoch") and len(lines) == 1 + 20 + 20 + 44


def test_report_sentence_flips_with_the_data(tmp_path: Path) -> None:
    """Accuracy rising with Unknown share must be described as rising, and b_unk as positive."""
    folder = tmp_path / "runs"
    for x in (0.0, 0.5, 1.0):
        name = f"D_unk{x:.2f}"
        write_run(folder, name, random.Random(1))
        res = json.loads((folder / name / "results.json").read_text())
        for p in res:
            for s in res[p]:
                res[p][s]["exact_match"] = 0.2 + 0.3 * x
        (folder / name / "results.json").write_text(json.dumps(res))
    readme = (write_report(folder) / "README.md").read_text()
    assert "accuracy at EARLY_STOP rises from 20.0% at 0% Unknown to 50.0% at 100% Unknown" in readme
    assert "falls from" not in readme
    assert "do not show the paper's finding" in readme


def test_report_cli_and_errors(runs_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", str(runs_dir), "--output-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "missing run D_Known_unk0.75" in out and "unfinished run D_MaybeKnown" in out
    assert (tmp_path / "r" / "README.md").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert "no run folders" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nope")]) == 2


def test_runs_without_dynamics_still_report(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    for name in ("D_unk0.00", "D_unk1.00"):
        write_run(folder, name, random.Random(2), skip=("dynamics",))
    runs = load_runs(folder)
    assert runs.runs["D_unk0.00"].problems == ["no training_dynamics.jsonl"]
    out = write_report(folder)
    readme = (out / "README.md").read_text()
    assert "not fitted" in readme and (out / "accuracy_vs_unknown.png").exists()
    assert not (out / "train_fit.png").exists()


def test_trend_sentences_say_only_what_the_numbers_show() -> None:
    from slick_hf.report.findings import trend_sentence

    flat = trend_sentence("A", [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0)])
    assert flat == "A is 0.0% at every Unknown ratio measured (0%: 0.0, 50%: 0.0, 100%: 0.0)."
    assert "falls" not in flat and "monoton" not in flat
    bump = trend_sentence("A", [(0.0, 10.0), (0.5, 20.0), (1.0, 10.0)])
    assert bump.startswith("A is 10.0% at both 0% and 100% Unknown, and differs in between")
    down = trend_sentence("A", [(0.0, 30.0), (0.5, 35.0), (1.0, 10.0)])
    assert down.startswith("A falls from 30.0% at 0% Unknown to 10.0% at 100% Unknown but not monotonically")
    assert trend_sentence("A", [(0.0, 30.0)]) is None


def test_a_run_still_being_evaluated_is_not_counted(tmp_path: Path) -> None:
    """results.json may hold both stopping points while the last split is still evaluated; run.json comes last."""
    folder = tmp_path / "runs"
    for name in ("D_unk0.00", "D_unk1.00"):
        write_run(folder, name, random.Random(2))
    (folder / "D_unk1.00" / "run.json").unlink()
    runs = load_runs(folder)
    assert runs.runs["D_unk0.00"].complete and not runs.runs["D_unk1.00"].complete
    assert runs.runs["D_unk1.00"].evaluated and "D_unk1.00" not in runs.groups
    assert "no run.json (still being evaluated" in runs.incomplete["D_unk1.00"][0]
