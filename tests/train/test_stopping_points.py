"""How a run saves its two stopping points, with stand-in trainers (no model, no training): where
EARLY_STOP is the last epoch its weights are written once, and every weights file follows the umask."""

import json
import os
import stat
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from slick_hf.runs import CONVERGENCE_DIR, TRAIN_DONE
from slick_hf.train.run import run_training

EPOCH_WEIGHTS = [b"weights after epoch 1", b"weights after epoch 2", b"weights after epoch 3"]


@pytest.fixture(autouse=True)
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def write_like_safetensors(path: Path, data: bytes) -> None:
    """A temporary file (mode 0600) renamed into place, as safetensors 0.8 writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class FakeModel:
    """Saves like `save_pretrained`; `in_place`: opening the weights file for writing, as safetensors
    before 0.8 did (and 0.8 where a file system cannot rename)."""

    def __init__(self, weights: bytes, in_place: bool = False) -> None:
        self.weights, self.in_place = weights, in_place

    def save_pretrained(self, target) -> None:
        path = Path(target) / "model.safetensors"
        if self.in_place:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.weights)
        else:
            write_like_safetensors(path, self.weights)
        (Path(target) / "config.json").write_text("{}")


class FakeTokenizer:
    def save_pretrained(self, target) -> None:
        (Path(target) / "tokenizer.json").write_text("{}")


class CheckpointingTrainer:
    """A trainer with `save_strategy: epoch` and `load_best_model_at_end`: a checkpoint per epoch, the best loaded."""

    keeps_best_weights = False

    def __init__(self, run_dir: Path, best: int) -> None:
        self.run_dir, self.best = run_dir, best
        self.model = FakeModel(EPOCH_WEIGHTS[-1])
        self.processing_class = FakeTokenizer()
        history = [{"epoch": float(i), "step": i, "eval_exact_match": i / 10} for i in range(1, 4)]
        self.state = SimpleNamespace(
            epoch=3.0, global_step=3, log_history=history, best_model_checkpoint=None, best_metric=None
        )

    def train(self, resume_from_checkpoint=None) -> None:
        for step, weights in enumerate(EPOCH_WEIGHTS, 1):
            checkpoint = self.run_dir / f"checkpoint-{step}"
            FakeModel(weights).save_pretrained(checkpoint)
            self.processing_class.save_pretrained(checkpoint)
            (checkpoint / "optimizer.pt").write_bytes(b"optimizer state")
            (checkpoint / "trainer_state.json").write_text("{}")
        self.state.best_model_checkpoint = str(self.run_dir / f"checkpoint-{self.best}")
        self.state.best_metric = self.best / 10
        self.model = FakeModel(EPOCH_WEIGHTS[self.best - 1])


class InMemoryTrainer:
    """A trainer with `save_strategy: "no"`: the best epoch's weights kept (restored by `restore_best`)."""

    keeps_best_weights = True
    best_weights = None

    def __init__(self, best: int, in_place: bool = False) -> None:
        self.model = FakeModel(EPOCH_WEIGHTS[-1], in_place)
        self.processing_class = FakeTokenizer()
        self.best_epoch, self.best_dev_exact_match = float(best), best / 10
        self.state = SimpleNamespace(epoch=3.0, global_step=3, log_history=[])
        self.restored = False

    def train(self, resume_from_checkpoint=None) -> None:
        pass

    def restore_best(self) -> None:
        self.model.weights = EPOCH_WEIGHTS[int(self.best_epoch) - 1]
        self.restored = True


def weights(folder: Path) -> Path:
    return folder / "model.safetensors"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def check_saved(run_dir: Path, best: int) -> None:
    """EARLY_STOP at the root, CONVERGENCE in `convergence/`; one copy when they are the same; modes 0644."""
    root, last = weights(run_dir), weights(run_dir / CONVERGENCE_DIR)
    assert root.read_bytes() == EPOCH_WEIGHTS[best - 1]
    assert last.read_bytes() == EPOCH_WEIGHTS[-1]
    assert root.samefile(last) == (best == len(EPOCH_WEIGHTS))
    assert mode(root) == mode(last) == mode(run_dir / "config.json") == 0o644
    for folder in (run_dir, run_dir / CONVERGENCE_DIR):
        assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    assert json.loads((run_dir / TRAIN_DONE).read_text())["best_epoch"] == float(best)


@pytest.mark.parametrize("best", [3, 1])
def test_checkpointed_run_writes_the_last_epochs_weights_once(tmp_path, best):
    summary = run_training(CheckpointingTrainer(tmp_path, best), tmp_path)
    assert summary["best_epoch"] == float(best)
    check_saved(tmp_path, best)
    convergence = tmp_path / CONVERGENCE_DIR
    if best != 3:  # CONVERGENCE is the last checkpoint's weights, linked rather than copied
        assert weights(convergence).samefile(weights(tmp_path / "checkpoint-3"))
    assert not (convergence / "optimizer.pt").exists() and not (convergence / "trainer_state.json").exists()


@pytest.mark.parametrize("best", [3, 2])
def test_run_without_checkpoints_writes_the_last_epochs_weights_once(tmp_path, best):
    trainer = InMemoryTrainer(best)
    run_training(trainer, tmp_path)
    check_saved(tmp_path, best)
    assert trainer.restored == (best != 3)
    assert run_training(InMemoryTrainer(1), tmp_path)["best_epoch"] == float(best)  # done: nothing redone


def test_saving_again_never_writes_through_a_link(tmp_path):
    run_training(InMemoryTrainer(3), tmp_path)  # one copy, linked
    (tmp_path / TRAIN_DONE).unlink()  # as after a kill before training was marked done
    run_training(InMemoryTrainer(2, in_place=True), tmp_path)
    check_saved(tmp_path, 2)
