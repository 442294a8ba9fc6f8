"""One training run: resume from the last complete checkpoint, train to CONVERGENCE, keep EARLY_STOP."""

import copy
import json
import shutil
from pathlib import Path

from slick_hf.hub import atomic_write_text
from slick_hf.runs import CONVERGENCE_DIR, DYNAMICS_FILE, TRAIN_DONE
from slick_hf.train.model_files import (
    checkpoint_model_files,
    clear_weights,
    follow_umask,
    install_model_files,
    share_model,
)
from slick_hf.train.trainer import SlickSFTTrainer


def checkpoint_step(path: str | Path) -> int:
    """The global step of a Trainer `checkpoint-<step>` folder."""
    return int(Path(path).name.split("-")[-1])


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint. The Trainer writes `trainer_state.json` last, so a
    checkpoint without it was cut short (a kill, a full disk): it is removed, never resumed."""
    complete = []
    for ckpt in sorted(run_dir.glob("checkpoint-*"), key=checkpoint_step):
        if (ckpt / "trainer_state.json").exists():
            complete.append(ckpt)
        else:
            shutil.rmtree(ckpt, ignore_errors=True)
    return complete[-1] if complete else None


def keep_dynamics_up_to(path: Path, step: int) -> None:
    """Drop the dynamics rows logged after `step` (and a torn last line): training resumes there."""
    if not path.exists():
        return
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            break
        if row["step"] <= step:
            rows.append(line + "\n")
    atomic_write_text(path, "".join(rows))


def save_merged(model, tokenizer, target: Path) -> None:
    """Save full weights (a LoRA model is merged into its base first), with modes that follow the umask."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    clear_weights(target)  # they may be links to the other stopping point's: never written through
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    follow_umask(target)


def run_training(trainer: SlickSFTTrainer, run_dir: Path) -> dict:
    """Train to CONVERGENCE, keep the best dev epoch (EARLY_STOP) in `run_dir`, the last in `convergence/`.

    Where the best epoch is the last, its weights are written once and the run folder links them.
    """
    done = run_dir / TRAIN_DONE
    if done.exists():
        return json.loads(done.read_text())
    resume = last_checkpoint(run_dir)
    if resume is None:
        (run_dir / DYNAMICS_FILE).unlink(missing_ok=True)
    else:
        keep_dynamics_up_to(run_dir / DYNAMICS_FILE, checkpoint_step(resume))
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if trainer.keeps_best_weights:
        return save_from_memory(trainer, run_dir)
    last = last_checkpoint(run_dir)
    tokenizer = trainer.processing_class
    convergence = run_dir / CONVERGENCE_DIR
    state = trainer.state
    best_step = checkpoint_step(state.best_model_checkpoint) if state.best_model_checkpoint else None
    if best_step == checkpoint_step(last):  # the model loaded as the best is the last one
        save_merged(trainer.model, tokenizer, convergence)
        share_model(convergence, run_dir)
    else:
        if hasattr(trainer.model, "merge_and_unload"):
            from peft import PeftModel

            from slick_hf.models import load_causal_lm

            base = load_causal_lm(str(trainer.model.peft_config["default"].base_model_name_or_path), "auto")
            save_merged(PeftModel.from_pretrained(base, last), tokenizer, convergence)
        else:
            install_model_files(checkpoint_model_files(last), convergence)  # weights linked, not copied
        save_merged(trainer.model, tokenizer, run_dir)
    best_epoch = next(
        (h["epoch"] for h in state.log_history if h.get("step") == best_step and "eval_exact_match" in h),
        None,
    )
    return write_summary(trainer, run_dir, best_epoch, state.best_metric)


def save_from_memory(trainer: SlickSFTTrainer, run_dir: Path) -> dict:
    """No checkpoints: the model as trained is CONVERGENCE; the best epoch's kept weights are EARLY_STOP
    (the same model, saved once, when the best epoch is the last)."""
    model, tokenizer, convergence = trainer.model, trainer.processing_class, run_dir / CONVERGENCE_DIR
    if trainer.best_epoch == trainer.state.epoch:  # the best epoch is the last: restoring would change nothing
        save_merged(model, tokenizer, convergence)
        share_model(convergence, run_dir)
    else:
        # merging a LoRA model changes it in place: merge a copy, the adapters are restored next
        save_merged(copy.deepcopy(model) if hasattr(model, "merge_and_unload") else model, tokenizer, convergence)
        trainer.restore_best()
        save_merged(trainer.model, tokenizer, run_dir)
    if trainer.best_weights is not None:  # the best epoch was the last: its kept copy is not needed
        trainer.best_weights.unlink(missing_ok=True)
    return write_summary(trainer, run_dir, trainer.best_epoch, trainer.best_dev_exact_match)


def write_summary(trainer: SlickSFTTrainer, run_dir: Path, best_epoch: float | None, best_dev: float | None) -> dict:
    """Write `train_complete.json` (which also marks training done) and return it."""
    state = trainer.state
    summary = {
        "best_epoch": best_epoch,
        "best_dev_exact_match": best_dev,
        "epochs": state.epoch,
        "global_step": state.global_step,
        "log_history": state.log_history,
    }
    atomic_write_text(run_dir / TRAIN_DONE, json.dumps(summary, indent=2))
    return summary
