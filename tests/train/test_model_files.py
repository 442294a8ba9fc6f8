"""The stopping points' model files (no torch): weights on disk once, hard-linked, with the umask's modes."""

import os
import stat
from pathlib import Path

import pytest

from slick_hf.train import model_files
from slick_hf.train.model_files import (
    checkpoint_model_files,
    clear_weights,
    follow_umask,
    install_model_files,
    share_model,
)

WEIGHTS = b"safetensors bytes " * 8


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def saved_model(folder: Path, weights: bytes = WEIGHTS) -> Path:
    """A folder as `save_pretrained` leaves it: weights 0600 (as safetensors writes them), the rest 0644."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(weights)
    os.chmod(folder / "model.safetensors", 0o600)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja"):
        (folder / name).write_text(f"{name} of {folder.name}")
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def hidden(folder: Path) -> list[Path]:
    return list(folder.rglob(".*"))


def test_the_same_model_at_both_stopping_points_is_on_disk_once(tmp_path, umask_022):
    run_dir = tmp_path / "D_unk0.50"
    convergence = saved_model(run_dir / "convergence")
    (run_dir / "results.json").write_text("{}")
    (run_dir / "model.safetensors").write_bytes(b"an earlier, interrupted save")
    share_model(convergence, run_dir)
    root, last = run_dir / "model.safetensors", convergence / "model.safetensors"
    assert root.samefile(last) and root.stat().st_nlink == 2  # one copy of the weights
    assert root.read_bytes() == WEIGHTS
    for name in ("config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (run_dir / name).read_text() == (convergence / name).read_text()
        assert not (run_dir / name).samefile(convergence / name)  # small files are copies
    assert (run_dir / "results.json").read_text() == "{}"  # the run's other files are left alone
    assert mode(root) == mode(run_dir / "config.json") == 0o644
    assert hidden(run_dir) == []


def test_a_later_save_into_one_folder_leaves_the_other_as_it_was(tmp_path, umask_022):
    run_dir = tmp_path / "run"
    convergence = saved_model(run_dir / "convergence")
    share_model(convergence, run_dir)
    clear_weights(run_dir)  # what a save into the run folder does first
    saved_model(run_dir, b"new EARLY_STOP weights")
    assert (convergence / "model.safetensors").read_bytes() == WEIGHTS
    (convergence / "config.json").write_text("rewritten in place")  # as `save_pretrained` writes config.json
    assert (run_dir / "config.json").read_text() == "config.json of run"


def test_weights_follow_the_umask(tmp_path):
    folder = saved_model(tmp_path / "m")
    (folder / "model.safetensors.index.json").write_text("{}")
    os.chmod(folder / "model.safetensors.index.json", 0o600)
    old = os.umask(0o027)
    try:
        follow_umask(folder)
    finally:
        os.umask(old)
    assert mode(folder / "model.safetensors") == mode(folder / "model.safetensors.index.json") == 0o640


def test_convergence_links_the_last_checkpoints_weights_not_its_training_state(tmp_path, umask_022):
    checkpoint = saved_model(tmp_path / "run" / "checkpoint-4")
    for name in ("trainer_state.json", "training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (checkpoint / name).write_text(name)
    files = checkpoint_model_files(checkpoint)
    assert [f.name for f in files] == sorted(
        ["chat_template.jinja", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]
    )
    convergence = tmp_path / "run" / "convergence"
    install_model_files(files, convergence)
    assert (convergence / "model.safetensors").samefile(checkpoint / "model.safetensors")
    assert mode(convergence / "model.safetensors") == 0o644
    assert sorted(p.name for p in convergence.iterdir()) == [f.name for f in files]


def test_without_hard_links_the_weights_are_copied(tmp_path, umask_022, monkeypatch):
    def no_links(src, dst, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(model_files.os, "link", no_links)
    convergence = saved_model(tmp_path / "run" / "convergence")
    share_model(convergence, tmp_path / "run")
    root = tmp_path / "run" / "model.safetensors"
    assert root.read_bytes() == WEIGHTS and not root.samefile(convergence / "model.safetensors")
    assert mode(root) == 0o644 and hidden(tmp_path / "run") == []


def test_clearing_weights_keeps_the_other_name_of_a_link(tmp_path):
    run_dir = tmp_path / "run"
    share_model(saved_model(run_dir / "convergence"), run_dir)
    clear_weights(run_dir)
    assert not (run_dir / "model.safetensors").exists() and (run_dir / "config.json").exists()
    assert (run_dir / "convergence" / "model.safetensors").read_bytes() == WEIGHTS
    clear_weights(run_dir / "convergence")
    clear_weights(run_dir / "nothing-here")
    assert not list(run_dir.rglob("*.safetensors"))
