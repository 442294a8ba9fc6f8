"""TRL's SFTTrainer with dev exact match and training dynamics (Known/Unknown fit) every epoch."""

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers.trainer_callback import ProgressCallback

from slick_hf.core.schema import category_names
from slick_hf.core.slick import KNOWN
from slick_hf.distributed import is_main_process
from slick_hf.engines.plain import PlainTransformersEngine
from slick_hf.evaluate.scoring import generate_answers, score
from slick_hf.hardware import configure_threads, resolve_dtype
from slick_hf.runs import DYNAMICS_FILE
from slick_hf.train.loss import CompletionLossSFTTrainer

logger = logging.getLogger(__name__)
# the best epoch's trainable weights while training runs on (save_strategy "no"), one file per process; hidden,
# so an interrupted run's leftover is never pushed (push_folder skips dot files)
BEST_WEIGHTS_PREFIX = ".best-epoch-weights-"


def fit_references(train: Dataset) -> list[list[str]]:
    """What a fitted model answers on each train row: its gold aliases, or the IDK target."""
    return [
        [c] if idk else list(a)
        for c, a, idk in zip(train["completion"], train["answers"], train["is_idk"], strict=True)
    ]


def train_fit_stats(predictions: Sequence[str], train: Dataset) -> dict:
    """The paper's training dynamics: how many Known and Unknown train examples the model fits."""
    correct = score(predictions, fit_references(train), None, return_per_example=True)["per_example_correct"]
    # rows SliCK did not judge (category None: a whole user set's long-form rows) count in neither
    known = [c in KNOWN for c in train["category"]]
    unknown = [c is not None and c not in KNOWN for c in train["category"]]
    n_kn = sum(ok for ok, k in zip(correct, known, strict=True) if k)
    n_unk = sum(ok for ok, u in zip(correct, unknown, strict=True) if u)
    n_known, n_unknown = sum(known), sum(unknown)
    return {
        "train_fit": sum(correct) / len(correct) if correct else None,
        "train_fit_known": n_kn / n_known if n_known else None,
        "train_fit_unknown": n_unk / n_unknown if n_unknown else None,
        "n_known_fit": n_kn,
        "n_unknown_fit": n_unk,
        "n_known": n_known,
        "n_unknown": n_unknown,
        "train_size": len(known),
    }


class SlickSFTTrainer(CompletionLossSFTTrainer):
    """SFTTrainer whose evaluation also generates: dev exact match and train fit per category.

    On CPU its training loss goes through the LM head on the completion tokens only (`train.loss`).

    `eval_exact_match` is returned with the loss, so `metric_for_best_model: exact_match` with
    `load_best_model_at_end` keeps the best dev epoch (EARLY_STOP) while training runs on. With
    `save_strategy: "no"` (no checkpoints: the CPU recipes, where writing the weights and the
    optimizer every epoch costs more than a short run) the best epoch's trainable weights alone are
    written to a file of the run folder instead (`best_weights`, `best_epoch`; a copy kept in memory
    would add the model's size to the training peak), restored and removed at the end; a run cut
    short then restarts from scratch.
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
        self.best_weights: Path | None = None
        self.best_epoch: float | None = None
        self.best_dev_exact_match: float | None = None

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        if self.args.dev_loss:
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            extra = self.generation_metrics(metric_key_prefix)
            self.log(extra)
            return metrics | extra
        metrics = self.generation_metrics(metric_key_prefix)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _answers(self, prompts: Sequence[str]) -> list[str]:
        engine = PlainTransformersEngine.from_loaded(
            self.model,
            self.generation_tokenizer,
            {"model_id": "training"},
            self.args.eval_batch_size_generate,
        )
        self.model.eval()
        bf16_cpu = bool(self.args.bf16) and self.model.device.type == "cpu"  # as in training: bf16 autocast
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_cpu):
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
        if is_main_process():
            with (Path(self.args.output_dir) / DYNAMICS_FILE).open("a") as f:
                f.write(json.dumps(row) + "\n")
        if self.keeps_best_weights:
            self.keep_if_best(dev_scores["exact_match"])
        return out

    @property
    def keeps_best_weights(self) -> bool:
        """No checkpoints (`save_strategy: "no"`): EARLY_STOP is the best epoch's weights, kept in a file."""
        return self.args.save_strategy == "no"

    def keep_if_best(self, dev_exact_match: float) -> None:
        """Write the trainable weights when dev exact match beats every earlier epoch (ties keep the earlier)."""
        if self.best_dev_exact_match is not None and dev_exact_match <= self.best_dev_exact_match:
            return
        self.best_dev_exact_match, self.best_epoch = dev_exact_match, self.state.epoch
        trainable = {name: p.detach() for name, p in self.model.named_parameters() if p.requires_grad}
        path = Path(self.args.output_dir) / f"{BEST_WEIGHTS_PREFIX}{self.args.process_index}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(trainable, path.with_suffix(".tmp"))  # written from the parameters' own memory, no copy
        os.replace(path.with_suffix(".tmp"), path)
        self.best_weights = path

    def restore_best(self) -> None:
        """Load the weights kept by `keep_if_best` back into the model (EARLY_STOP)."""
        if self.best_weights is None:
            raise RuntimeError("no epoch was evaluated: nothing to restore")
        params = dict(self.model.named_parameters())
        saved = torch.load(self.best_weights, map_location="cpu", weights_only=True, mmap=True)
        with torch.no_grad():
            for name, tensor in saved.items():
                params[name].copy_(tensor)
        del saved
        self.best_weights.unlink()
        self.best_weights = None


def prompt_completion(ds: Dataset, prompt_template: str) -> Dataset:
    """Dev questions in TRL prompt/completion form (first alias as target), for the eval loss."""
    return Dataset.from_dict(
        {
            "prompt": [prompt_template.format(question=q) for q in ds["question"]],
            "completion": [a[0] for a in ds["answers"]],
        }
    )


def training_attention(requested: str | None, bf16_cpu: bool) -> str | None:
    """The attention implementation to fine-tune with: the one asked for, else eager for bf16 on CPU.

    torch's CPU flash-attention backward costs about 5.5 ms per layer in bf16 at fine-tuning shapes
    (16 sequences of ~24 tokens); with eager attention a SmolLM2-135M step is 1.2x faster
    (benchmarks/README.md). Elsewhere the model's default stays.
    """
    return requested or ("eager" if bf16_cpu else None)


class PostfixProgressCallback(ProgressCallback):
    """transformers' progress bars, with the latest loss and dev exact match shown on the training bar
    instead of a printed dict at every logging step."""

    SHOWN = ("loss", "eval_exact_match")

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Show the logged loss / dev exact match as the training bar's postfix."""
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        shown = {k.removeprefix("eval_"): f"{logs[k]:.4g}" for k in self.SHOWN if isinstance(logs.get(k), float | int)}
        if shown:
            self.training_bar.set_postfix(shown, refresh=False)


def build_trainer(train: Dataset, dev: Dataset, script, training, model_args) -> SlickSFTTrainer:
    """The trainer for one run: model (full or LoRA), datasets, generation-based evaluation."""
    from trl import get_peft_config

    from slick_hf.models import load_causal_lm, load_tokenizer, resolve_model

    resolved = resolve_model(model_args.model_name_or_path)
    on_gpu = torch.cuda.is_available() and not training.use_cpu
    dtype = resolve_dtype(model_args.dtype, "cuda" if on_gpu else "cpu")
    if not on_gpu:
        configure_threads()
        if dtype == "bfloat16" and not training.bf16:
            logger.info("training with bf16 autocast (fp32 master weights): --dtype float32 turns it off")
            training.bf16 = True
        dtype = "float32"  # CPU: fp32 weights, bf16 compute under autocast
    model = load_causal_lm(resolved, dtype, "cpu", training.trust_remote_code)
    attention = training_attention(model_args.attn_implementation, bool(training.bf16) and not on_gpu)
    if attention:
        model.set_attn_implementation(attention)
    tokenizer = load_tokenizer(resolved, training.trust_remote_code)
    tokenizer.padding_side = "right"
    dev_eval = dev.select(range(min(len(dev), training.dev_limit))) if training.dev_limit else dev
    trainer = SlickSFTTrainer(
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
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(PostfixProgressCallback)
    return trainer
