"""slick_hf.hub: config names, atomic writes, card merging, and a push that fails cleanly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict, load_dataset
from huggingface_hub import DatasetCard

from slick_hf.errors import SlickError
from slick_hf.hub import (
    BEGIN,
    END,
    META_FILE,
    atomic_write_text,
    config_name_for,
    push_folder,
    write_card,
    write_dataset_repo,
    write_parquet,
)

TOKEN = "hf_secret_test_token"
DEAD_ENDPOINT = "http://127.0.0.1:9"


def _render(metas) -> str:
    return "Configs: " + ", ".join(f"{m['config_name']}={m['model']['model_id']}" for m in metas)


def _meta(model_id: str, split: str, relations=("capital",)) -> dict:
    return {
        "model": {"model_id": model_id},
        "dataset": {"source": "geo", "relations": list(relations), "reports": {split: f"kept {split}"}},
        "exemplars": {r: [] for r in relations},
        "splits": {split: {"num_examples": 2}},
    }


def _splits(**named: int) -> DatasetDict:
    return DatasetDict(
        {s: Dataset.from_dict({"id": [f"{s}/{i}" for i in range(n)], "x": list(range(n))}) for s, n in named.items()}
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*")]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("org/Model", "org--Model"),
        ("smollm2-135m", "smollm2-135m"),
        ("Qwen/Qwen2.5-0.5B", "Qwen--Qwen2.5-0.5B"),
        ("org/Model v2 (beta)", "org--Model-v2-beta"),
        ("/abs/path/to/model/", "abs--path--to--model"),
        ("./local", "local"),
        ("a@b#c", "a-b-c"),
        ("ü-model", "model"),
    ],
)
def test_config_name_for(model, expected):
    name = config_name_for(model)
    assert name == expected
    assert "/" not in name and not name.startswith((".", "-"))


@pytest.mark.parametrize("model", ["", "///", "@@@", "...", "ü"])
def test_config_name_for_rejects_unusable_names(model):
    with pytest.raises(SlickError, match="--config-name"):
        config_name_for(model)


def test_atomic_write_text_replaces_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "deep" / "dir" / "README.md"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"
    assert [p.name for p in path.parent.iterdir()] == ["README.md"]


def test_write_parquet_round_trips_without_temp_files(tmp_path):
    ds = _splits(test=3)["test"]
    path = tmp_path / "cfg" / "test-00000-of-00001.parquet"
    write_parquet(ds, path)
    write_parquet(ds, path)  # overwrite
    assert Dataset.from_parquet(str(path)).to_list() == ds.to_list()
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_write_dataset_repo_layout_and_card(tmp_path):
    write_dataset_repo(tmp_path, "org--A", _splits(dev=2, test=3), _meta("org/A", "test"), _render)
    assert sorted(p.name for p in (tmp_path / "org--A").iterdir()) == sorted(
        [META_FILE, "dev-00000-of-00001.parquet", "test-00000-of-00001.parquet"]
    )
    assert _hidden(tmp_path) == []
    card = DatasetCard.load(tmp_path / "README.md")
    assert card.data.configs == [
        {
            "config_name": "org--A",
            "data_files": [
                {"split": "dev", "path": "org--A/dev-*.parquet"},
                {"split": "test", "path": "org--A/test-*.parquet"},
            ],
        }
    ]
    assert "slick" in card.data.tags
    assert f"{BEGIN}\nConfigs: org--A=org/A\n{END}" in card.text
    dd = load_dataset(str(tmp_path), "org--A")
    assert dd["test"].to_list() == _splits(test=3)["test"].to_list()
    assert sorted(dd) == ["dev", "test"]


def test_write_dataset_repo_merges_meta_across_runs(tmp_path):
    write_dataset_repo(tmp_path, "org--A", _splits(dev=2), _meta("org/A", "dev", ["capital"]), _render)
    write_dataset_repo(tmp_path, "org--A", _splits(test=1), _meta("org/A", "test", ["continent"]), _render)
    meta = json.loads((tmp_path / "org--A" / META_FILE).read_text())
    assert sorted(meta["splits"]) == ["dev", "test"]
    assert meta["dataset"]["relations"] == ["capital", "continent"]
    assert sorted(meta["exemplars"]) == ["capital", "continent"]
    assert meta["dataset"]["reports"] == {"dev": "kept dev", "test": "kept test"}
    card = DatasetCard.load(tmp_path / "README.md")
    assert [f["split"] for f in card.data.configs[0]["data_files"]] == ["dev", "test"]


def test_write_card_merges_into_an_existing_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "---\n"
        "license: cc0-1.0\n"
        "configs:\n"
        "- config_name: human\n"
        "  data_files:\n"
        "  - split: test\n"
        "    path: human/test.jsonl\n"
        "- config_name: org--A\n"
        "  data_files: stale/*.parquet\n"
        "---\n"
        "# My dataset\n\nHand-written intro.\n"
    )
    write_dataset_repo(tmp_path, "org--A", _splits(test=1), _meta("org/A", "test"), _render)
    write_dataset_repo(tmp_path, "org--B", _splits(test=1), _meta("org/B", "test"), _render)
    card = DatasetCard.load(readme)
    assert card.data.license == "cc0-1.0"
    configs = {c["config_name"]: c for c in card.data.configs}
    assert list(configs) == ["human", "org--A", "org--B"]
    assert configs["human"]["data_files"] == [{"split": "test", "path": "human/test.jsonl"}]
    assert configs["org--A"]["data_files"] == [{"split": "test", "path": "org--A/test-*.parquet"}]
    assert card.text.startswith("# My dataset\n\nHand-written intro.")
    assert card.text.count(BEGIN) == 1 and card.text.count(END) == 1
    assert "Configs: org--A=org/A, org--B=org/B" in card.text

    # text the user adds after our section survives a rewrite, and the section is replaced in place
    readme.write_text(readme.read_text() + "\nFooter by hand.\n")
    write_card(tmp_path, lambda metas: "REPLACED")
    text = DatasetCard.load(readme).text
    assert text.count(BEGIN) == 1 and "REPLACED" in text and "Configs:" not in text
    assert text.index("Hand-written intro.") < text.index(BEGIN) < text.index("Footer by hand.")
    assert _hidden(tmp_path) == []


def _unreachable_hub(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)


def test_push_folder_to_unreachable_hub_fails_cleanly(tmp_path, monkeypatch):
    folder = tmp_path / "repo"
    write_dataset_repo(folder, "org--A", _splits(test=2), _meta("org/A", "test"), _render)
    before = _snapshot(folder)
    _unreachable_hub(monkeypatch)
    with pytest.raises(SlickError) as info:
        push_folder(folder, "me/slick-geo", "dataset")
    message = str(info.value)
    assert "connection refused" in message.lower()  # it did try the (dead) endpoint
    assert "Nothing was lost" in message
    assert f"slick-hf push {folder} me/slick-geo --repo-type dataset" in message
    assert TOKEN not in message
    assert "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert _snapshot(folder) == before


def test_cli_push_to_unreachable_hub(tmp_path):
    folder = tmp_path / "repo"
    write_dataset_repo(folder, "org--A", _splits(test=2), _meta("org/A", "test"), _render)
    before = _snapshot(folder)
    env = dict(os.environ, HF_ENDPOINT=DEAD_ENDPOINT, HF_HUB_OFFLINE="0", HF_TOKEN=TOKEN)
    proc = subprocess.run(
        [sys.executable, "-m", "slick_hf.cli", "push", str(folder), "me/slick-geo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("slick-hf: error: could not push"), proc.stderr
    assert "connection refused" in lines[0].lower()
    assert "Nothing was lost" in lines[0] and f"slick-hf push {folder} me/slick-geo" in lines[0]
    assert TOKEN not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert _snapshot(folder) == before


def test_cli_push_missing_folder(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "slick_hf.cli", "push", str(tmp_path / "nope"), "me/x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"slick-hf: error: no such folder: {tmp_path / 'nope'}"]


def test_written_files_follow_the_umask(tmp_path):
    import os
    import stat

    from slick_hf.hub import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "card.md", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "card.md").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["card.md"]


def test_an_unreachable_hub_is_one_line_suggesting_offline_mode(monkeypatch, tmp_path, capsys):
    import socket

    from huggingface_hub import constants

    from slick_hf.cli.main import main
    from slick_hf.hub import require_hub

    with socket.socket() as s:  # a port nothing listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    require_hub.cache_clear()
    for argv in (
        ["annotate", "--dataset", "someorg/somedata", "--splits", "train", "--output-dir", str(tmp_path)],
        ["annotate", "--model", "someorg/somemodel", "--output-dir", str(tmp_path)],
        ["variants", "someorg/annotated", "--output-dir", str(tmp_path)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("slick-hf: error: cannot reach http://127.0.0.1"), err
        assert "set HF_HUB_OFFLINE=1" in err[0]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    require_hub.cache_clear()
    require_hub("dataset 'someorg/somedata'")  # offline: nothing to check
    require_hub.cache_clear()


def test_the_metric_folder_is_pushed_as_a_gradio_space(monkeypatch):
    """`slick-hf push evaluation/slick_exact_match ORG/NAME --repo-type space`: a gradio Space with the folder."""
    from huggingface_hub import HfApi

    from slick_hf.cli.main import main
    from slick_hf.evaluate.scoring import METRIC_DIR

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(
        HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw["repo_id"], kw)) or "https://hub/c"
    )
    assert main(["push", str(METRIC_DIR), "me/slick_exact_match", "--repo-type", "space"]) == 0
    (create, upload) = calls
    assert create[1] == "me/slick_exact_match" and create[2]["repo_type"] == "space"
    assert create[2]["space_sdk"] == "gradio"
    assert upload[2]["repo_type"] == "space" and upload[2]["folder_path"] == str(METRIC_DIR)
    assert {"app.py", "requirements.txt", "README.md", "slick_exact_match.py", "tests.py"} <= {
        p.name for p in METRIC_DIR.iterdir()
    }


def test_cli_push_a_space_to_unreachable_hub(tmp_path, monkeypatch, capsys):
    from slick_hf.cli.main import main
    from slick_hf.evaluate.scoring import METRIC_DIR

    _unreachable_hub(monkeypatch)
    assert main(["push", str(METRIC_DIR), "me/slick_exact_match", "--repo-type", "space"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "could not push" in err[0] and "--repo-type space" in err[0] and TOKEN not in err[0]
