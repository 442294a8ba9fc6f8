"""`slick-hf filter`: a user's annotated chat set back in its own schema, without its Unknown rows."""

import json
from pathlib import Path

import datasets
import pytest

import slick_hf.engines.factory as factory
from slick_hf.cli.main import main
from slick_hf.testing import hub_datasets as hub
from slick_hf.variants import VariantSpec, build_variant

CONFIG = "t--facts"
UNKNOWN = {a for _, a in hub.CAPITALS} - hub.KNOWN_GREEDY - hub.KNOWN_SAMPLED


def load(path: Path, config: str | None = None, split: str = "train") -> datasets.Dataset:
    return datasets.load_dataset(str(path), config, split=split, download_mode="force_redownload")


def _annotate(src: Path, out: Path, monkeypatch, *extra: str) -> Path:
    monkeypatch.setattr(factory, "make_engine", lambda model, args: hub.FactEngine(model))
    argv = ["annotate", "--dataset", str(src), "--output-dir", str(out), "--model", "t/facts", *extra]
    assert main([*argv, "--num-prompts", "2", "--num-shots", "2", "--num-samples", "2"]) == 0
    return out


@pytest.fixture
def annotated_chat(tmp_path, monkeypatch) -> Path:
    src = hub.write_messages(tmp_path / "chat")
    return _annotate(src, tmp_path / "annotated", monkeypatch, "--splits", "train,validation")


def _answer(row: dict) -> str:
    return [m["content"] for m in row["messages"] if m["role"] == "assistant"][0]


def test_filter_drops_unknown_rows_and_keeps_the_schema(annotated_chat, tmp_path, capsys):
    out = tmp_path / "filtered"
    assert main(["filter", str(annotated_chat), "--dataset-config", CONFIG, "--output-dir", str(out)]) == 0
    assert "train: 18 -> 10 rows" in capsys.readouterr().out
    original = load(tmp_path / "chat")
    filtered = load(out)
    assert filtered.features == original.features  # chat rows stay chat rows
    expected = [r for r in original.to_list() if _answer(r) not in UNKNOWN]
    assert filtered.to_list() == expected  # the others, identical and in order
    assert {_answer(r) for r in filtered} & UNKNOWN == set()
    assert hub.LONG_ANSWER in {_answer(r) for r in filtered}  # not short-form: kept
    meta = json.loads((out / "slick_filter.json").read_text())
    counts = meta["counts"]["train"]["default"]
    assert counts["Unknown"] == {"removed": 8}
    assert counts["HighlyKnown"] == {"kept": 6} and counts["WeaklyKnown"] == {"kept": 2}
    assert counts["not judged"] == {"kept": 2}
    assert meta["config"] == CONFIG and meta["format"] == "messages" and meta["drop"] == ["Unknown"]
    card = (out / "README.md").read_text()
    assert "## train: 18 rows, 8 removed" in card
    assert "| default | 6 / 0 | 0 / 0 | 2 / 0 | 0 / 8 | 2 / 0 |" in card
    assert str(annotated_chat) in card and "t/facts" in card
    # the annotated config: the kept rows with their annotation, and dev for early stopping
    kept = load(out, CONFIG)
    assert len(kept) == 10 and not any(kept["slick_idk"])
    assert len(load(out, CONFIG, "dev")) > 0


def test_relabel_idk_keeps_every_row(annotated_chat, tmp_path):
    out = tmp_path / "idk"
    argv = ["filter", str(annotated_chat), "--dataset-config", CONFIG, "--output-dir", str(out), "--relabel-idk"]
    assert main(argv) == 0
    original, relabelled = load(tmp_path / "chat"), load(out)
    assert len(relabelled) == len(original) and relabelled.features == original.features
    for before, after in zip(original, relabelled, strict=True):
        if _answer(before) in UNKNOWN:
            assert _answer(after) == "I don't know" and after["messages"][0] == before["messages"][0]
        else:
            assert after == before
    kept = load(out, CONFIG)
    assert sum(kept["slick_idk"]) == len(UNKNOWN)
    whole = build_variant(kept, VariantSpec("whole"))
    assert len(whole) == len(original) and sum(whole["is_idk"]) == len(UNKNOWN)
    assert set(whole.filter(lambda r: r["is_idk"])["completion"]) == {"I don't know"}
    assert "relabelled to the IDK answer" in (out / "README.md").read_text()


def test_filter_keeps_prompt_completion_rows_so(tmp_path, monkeypatch):
    src = hub.write_prompt_completion(tmp_path / "pc")
    annotated = _annotate(src, tmp_path / "annotated", monkeypatch, "--splits", "train")
    out = tmp_path / "filtered"
    assert main(["filter", str(annotated), "--output-dir", str(out), "--drop", "Unknown,WeaklyKnown"]) == 0
    filtered = load(out)
    assert filtered.column_names == ["prompt", "completion"]
    rows = load(annotated, CONFIG)
    names = rows.features["slick_category"].names
    expected = [
        r["slick_source"]["completion"]
        for r in rows
        if r["slick_skipped"] or names[r["slick_category"]] not in ("Unknown", "WeaklyKnown")
    ]
    assert filtered["completion"] == expected  # held-out exemplars are kept, whatever the model knows
    assert any(r["slick_skipped"] for r in rows)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--drop", "Bogus"], "--drop takes SliCK categories"),
        (["--splits", "test"], "no split test"),
        ([], "--output-dir"),
    ],
)
def test_bad_filter_arguments_are_one_error_line(annotated_chat, tmp_path, capsys, args, needle):
    out = [] if not args else ["--output-dir", str(tmp_path / "o")]
    capsys.readouterr()
    assert main(["filter", str(annotated_chat), "--dataset-config", CONFIG, *out, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after datasets' progress bars
    assert err.startswith("slick-hf: error: ") and needle in err, err
