"""Fine-tuning with TRL's SFTTrainer, with dev exact match and training dynamics every epoch."""

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset
from trl import SFTTrainer

from .engines.local import TransformersEngine
from .evaluate import category_names, generate_answers, score
from .hub import atomic_write_text
from .slick import KNOWN

logger = logging.getLogger(__name__)
DYNAMICS_FILE = "training_dynamics.jsonl"


def fit_references(train: Dataset) -> list[list[str]]:
    """What a fitted model answers on each train row: its gold aliases, or the IDK target."""
    return [
        [c] if idk else list(a)
        for c, a, idk in zip(train["completion"], train["answers"], train["is_idk"], strict=True)
    ]


def train_fit_stats(predictions: Sequence[str], train: Dataset) -> dict:
    """Training dynamics of SPEC.md: how many Known and Unknown train examples the model fits."""
    correct = score(predictions, fit_references(train), None, return_per_example=True)["per_example_correct"]
    known = [c in KNOWN for c in train["category"]]
    n_kn = sum(ok for ok, k in zip(correct, known, strict=True) if k)
    n_unk = sum(ok for ok, k in zip(correct, known, strict=True) if not k)
    n_known, n_unknown = sum(known), len(known) - sum(known)
    return {
        "train_fit": (n_kn + n_unk) / len(known) if known else None,
        "train_fit_known": n_kn / n_known if n_known else None,
        "train_fit_unknown": n_unk / n_unknown if n_unknown else None,
        "n_known_fit": n_kn,
        "n_unknown_fit": n_unk,
        "n_known": n_known,
        "n_unknown": n_unknown,
        "train_size": len(known),
    }


class SlickSFTTrainer(SFTTrainer):
    """SFTTrainer whose evaluation also generates: dev exact match and train fit per category.

    `eval_exact_match` is returned with the loss, so `metric_for_best_model: exact_match` with
    `load_best_model_at_end` keeps the best dev epoch (EARLY_STOP) while training runs on.
    """

    def __init__(
        self,
        *args,
        dev_questions: Dataset,
        train_fit: Dataset | None,
        prompt_template: str,
        generation_tokenizer,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.dev_questions = dev_questions
        self.train_fit = train_fit
        self.prompt_template = prompt_template
        self.generation_tokenizer = generation_tokenizer

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        extra = self.generation_metrics(metric_key_prefix)
        self.log(extra)
        metrics.update(extra)
        return metrics

    def _answers(self, prompts: Sequence[str]) -> list[str]:
        engine = TransformersEngine.from_loaded(
            self.model,
            self.generation_tokenizer,
            {"model_id": "training"},
            self.args.eval_batch_size_generate,
        )
        self.model.eval()
        return generate_answers(engine, prompts, self.args.eval_max_new_tokens, self.args.eval_batch_size_generate)

    def generation_metrics(self, prefix: str) -> dict[str, float]:
        """Dev exact match, and which train examples the model fits, by Known/Unknown."""
        dev = self.dev_questions
        prompts = [self.prompt_template.format(question=q) for q in dev["question"]]
        dev_scores = score(self._answers(prompts), dev["answers"], category_names(dev))
        out = {f"{prefix}_exact_match": dev_scores["exact_match"]}
        row = {
            "epoch": self.state.epoch,
            "step": self.state.global_step,
            "dev_exact_match": dev_scores["exact_match"],
        }
        if self.train_fit is not None:
            row |= train_fit_stats(self._answers(self.train_fit["prompt"]), self.train_fit)
            out |= {f"{prefix}_train_fit_{k}": row[f"train_fit_{k}"] or 0.0 for k in ("known", "unknown")}
        if self.is_world_process_zero():
            with (Path(self.args.output_dir) / DYNAMICS_FILE).open("a") as f:
                f.write(json.dumps(row) + "\n")
        return out


TRAIN_DONE = "train_complete.json"
MODEL_FILES = ("*.safetensors", "*.json", "*.jinja", "*.txt", "*.model")


def prompt_completion(ds: Dataset, prompt_template: str) -> Dataset:
    """Dev questions in TRL prompt/completion form (first alias as target), for the eval loss."""
    return Dataset.from_dict(
        {
            "prompt": [prompt_template.format(question=q) for q in ds["question"]],
            "completion": [a[0] for a in ds["answers"]],
        }
    )


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


def build_trainer(train: Dataset, dev: Dataset, script, training, model_args) -> SlickSFTTrainer:
    """The trainer for one run: model (full or LoRA), datasets, generation-based evaluation."""
    from trl import get_peft_config

    from .models import load_causal_lm, load_tokenizer, resolve_model

    resolved = resolve_model(model_args.model_name_or_path)
    dtype = model_args.dtype if model_args.dtype not in (None, "auto") else "auto"
    model = load_causal_lm(resolved, dtype, "cpu", training.trust_remote_code)
    tokenizer = load_tokenizer(resolved, training.trust_remote_code)
    tokenizer.padding_side = "right"
    dev_eval = dev.select(range(min(len(dev), training.dev_limit))) if training.dev_limit else dev
    return SlickSFTTrainer(
        model=model,
        args=training,
        train_dataset=train.select_columns(["prompt", "completion"]),
        eval_dataset=prompt_completion(dev_eval, script.prompt_template),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        dev_questions=dev_eval,
        train_fit=train if training.track_train_fit else None,
        prompt_template=script.prompt_template,
        generation_tokenizer=load_tokenizer(resolved, training.trust_remote_code),
    )


def save_merged(model, tokenizer, target: Path) -> None:
    """Save full weights: a LoRA model is merged into its base first."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def run_training(trainer: SlickSFTTrainer, run_dir: Path) -> dict:
    """Train to CONVERGENCE, keep the best dev epoch (EARLY_STOP) in `run_dir`, the last in `convergence/`."""
    done = run_dir / TRAIN_DONE
    if done.exists():
        return json.loads(done.read_text())
    resume = last_checkpoint(run_dir)
    if resume is None:
        (run_dir / DYNAMICS_FILE).unlink(missing_ok=True)
    else:
        keep_dynamics_up_to(run_dir / DYNAMICS_FILE, checkpoint_step(resume))
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    last = last_checkpoint(run_dir)
    tokenizer = trainer.processing_class
    if hasattr(trainer.model, "merge_and_unload"):
        from peft import PeftModel

        from .models import load_causal_lm

        base = load_causal_lm(str(trainer.model.peft_config["default"].base_model_name_or_path), "auto")
        save_merged(PeftModel.from_pretrained(base, last), tokenizer, run_dir / "convergence")
    else:
        (run_dir / "convergence").mkdir(exist_ok=True)
        for pattern in MODEL_FILES:
            for f in last.glob(pattern):
                if not f.name.startswith(("trainer_state", "training_args", "scheduler", "rng_state")):
                    shutil.copy2(f, run_dir / "convergence" / f.name)
    save_merged(trainer.model, tokenizer, run_dir)
    state = trainer.state
    best_step = checkpoint_step(state.best_model_checkpoint) if state.best_model_checkpoint else None
    best_epoch = next(
        (h["epoch"] for h in state.log_history if h.get("step") == best_step and "eval_exact_match" in h),
        None,
    )
    summary = {
        "best_epoch": best_epoch,
        "best_dev_exact_match": state.best_metric,
        "epochs": state.epoch,
        "global_step": state.global_step,
        "log_history": state.log_history,
    }
    done.write_text(json.dumps(summary, indent=2))
    return summary
