"""The SFT loss on CPU through the LM head only where there is a label (the completion tokens).

TRL's `SFTTrainer` computes the loss with a chunked LM head over every position; it scores only the
labelled ones on Triton devices, and on CPU it runs its tile loop over all positions in torch ops.
A SliCK fine-tuning example is a short question and a shorter answer: about a fifth of the tokens
carry a label. Projecting only those through the 49K-wide head, and the softmax over them, makes a
SmolLM2-135M step 1.4x faster in float32 and 1.6x faster in bf16 autocast (benchmarks/README.md).
The loss is the same quantity as TRL's (summed negative log-likelihood over `num_items_in_batch`,
or the mean over the labelled tokens); the first batch checks it against the model's own loss
and keeps TRL's path if the model computes its logits any other way (soft-capping, scaling).
"""

from __future__ import annotations

import logging

import torch
from trl import SFTTrainer

logger = logging.getLogger(__name__)


class CompletionLossSFTTrainer(SFTTrainer):
    """`SFTTrainer` whose training loss on CPU projects only the labelled tokens through the LM head."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.completion_loss: bool | None = None  # decided on the first batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs or not self._completion_loss_applies(model, inputs):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.completion_loss is None:
            self.completion_loss = self._agrees_with_model_loss(model, inputs)
        if not self.completion_loss:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with self.accelerator.autocast():  # as Accelerate's wrapped model.forward, which this bypasses
            nll, logits, targets = completion_nll(model, inputs)
        denominator = targets.numel() if num_items_in_batch is None else num_items_in_batch
        loss = nll / torch.as_tensor(denominator).clamp(min=1)
        with torch.no_grad():  # the metrics TRL logs: entropy and token accuracy over the labelled tokens
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)
            mode = "train" if model.training else "eval"
            self._metrics[mode]["entropy"].append(entropy.mean().item() if len(targets) else 0.0)
            accuracy = (logits.argmax(-1) == targets).float().mean().item() if len(targets) else 0.0
            self._metrics[mode]["mean_token_accuracy"].append(accuracy)
        return loss

    def _completion_loss_applies(self, model, inputs) -> bool:
        return (
            self.completion_loss is not False
            and next(model.parameters()).device.type == "cpu"
            and self.accelerator.num_processes == 1
            and self.args.loss_type == "nll"
            and self.label_smoother is None
            and self.compute_loss_func is None
            and not getattr(self, "aux_loss_enabled", False)
            and "labels" in inputs
            and "shift_labels" not in inputs
        )

    def _agrees_with_model_loss(self, model, inputs) -> bool:
        with torch.no_grad(), self.accelerator.autocast():
            nll, _, targets = completion_nll(model, inputs)
            ours = float(nll / max(targets.numel(), 1))
            theirs = float(model(**inputs, use_cache=False).loss)
        agrees = abs(ours - theirs) <= 1e-3 * max(1.0, abs(theirs))
        if not agrees:
            logger.warning("completion-only loss %.5f != the model's %.5f: using TRL's loss", ours, theirs)
        return agrees


def completion_nll(model, inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed next-token NLL over the labelled positions; also their logits and target ids.

    The backbone runs on every token; the LM head and the softmax only on positions whose next
    token has a label (not -100).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    features = {k: v for k, v in inputs.items() if k not in ("labels", "num_items_in_batch")}
    hidden = base.base_model(**features, use_cache=False).last_hidden_state[:, :-1]
    labels = inputs["labels"][:, 1:]
    mask = labels != -100
    logits = base.get_output_embeddings()(hidden[mask])
    targets = labels[mask]
    nll = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
    return nll, logits, targets
