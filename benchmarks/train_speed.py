"""Fine-tuning speed, fp32 against bf16 autocast, on the CPU recipe's settings (side by side, one run).

Each dtype runs in its own subprocess on the same data: the first `--examples` geo train questions
in the recipe's format, full fine-tuning of SmolLM2-135M with the recipe's optimiser settings
(lr 1e-4 constant, batch 16, max_length 64). Reported: seconds per epoch (median over epochs after
the first), and the final train fit (greedy exact match on the training prompts, in the same dtype
the model trained in). `-fused` runs use fused AdamW, as the CPU recipes do; bf16 runs train with
eager attention, as the recipe does on CPU (`training_attention`), unless the name ends in `-sdpa`;
runs use the recipe's trainer loss (`CompletionLossSFTTrainer`: the LM head on the completion
tokens only) unless the name has `-trl` (TRL's `SFTTrainer` loss, over every position).

    python benchmarks/train_speed.py --examples 64 --epochs 5 \
        --dtypes float32-fused,bfloat16-fused,float32-fused-trl,bfloat16-fused-trl-sdpa \
        --output benchmarks/results/train_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(dtype: str, examples: int, epochs: int, out_path: str) -> None:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from slick_hf.core.prompts import DEFAULT_PROMPT_TEMPLATE
    from slick_hf.data import load_questions
    from slick_hf.engines.plain import PlainTransformersEngine
    from slick_hf.evaluate.scoring import generate_answers, score
    from slick_hf.hardware import configure_threads
    from slick_hf.models import load_causal_lm, load_tokenizer, resolve_model
    from slick_hf.train.loss import CompletionLossSFTTrainer
    from slick_hf.train.trainer import training_attention

    configure_threads()
    rows = load_questions("geo", splits=("train",))[0]["train"].shuffle(seed=0).select(range(examples))
    prompts = [DEFAULT_PROMPT_TEMPLATE.format(question=q) for q in rows["question"]]
    train = Dataset.from_dict({"prompt": prompts, "completion": [a[0] for a in rows["answers"]]})
    resolved = resolve_model("smollm2-135m")
    model = load_causal_lm(resolved, "bfloat16" if dtype == "bfloat16-weights" else "float32")
    autocast = dtype.startswith("bfloat16") and dtype != "bfloat16-weights"  # bf16 weights need none
    attention = training_attention("sdpa" if dtype.endswith("-sdpa") else None, autocast)  # as the recipe
    if attention:
        model.set_attn_implementation(attention)
    tok = load_tokenizer(resolved)
    tok.padding_side = "right"
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_epoch_begin(self, *args, **kwargs):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, *args, **kwargs):
            times.append(time.perf_counter() - self.t0)

    with tempfile.TemporaryDirectory() as tmp:
        args = SFTConfig(
            output_dir=tmp,
            use_cpu=True,
            bf16=autocast,
            optim="adamw_torch_fused" if "-fused" in dtype else "adamw_torch",
            num_train_epochs=epochs,
            learning_rate=1e-4,
            lr_scheduler_type="constant",
            per_device_train_batch_size=16,
            max_length=64,
            activation_checkpointing=False,
            save_strategy="no",
            report_to="none",
            logging_steps=1000,
            seed=42,
        )
        trainer_class = SFTTrainer if "-trl" in dtype else CompletionLossSFTTrainer  # the recipe's loss unless -trl
        trainer = trainer_class(model=model, args=args, train_dataset=train, processing_class=tok, callbacks=[Timer()])
        trainer.train()
    gen_tok = load_tokenizer(resolved)
    engine = PlainTransformersEngine.from_loaded(model.eval(), gen_tok, {"model_id": "bench"}, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        answers = generate_answers(engine, prompts, 24, 32)
    fit = score(answers, rows["answers"], None)["exact_match"]
    Path(out_path).write_text(json.dumps({"dtype": dtype, "epoch_seconds": times, "train_fit": fit}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--output", type=Path)
    ap.add_argument(
        "--dtypes",
        default="float32,bfloat16,bfloat16-fused",
        help="float32, bfloat16 (autocast), bfloat16-weights; -fused: fused AdamW (the CPU recipes'), -sdpa: "
        "bf16 with torch's flash attention instead of eager, -trl: TRL's loss over every position",
    )
    ap.add_argument("--worker", nargs=2, metavar=("DTYPE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.examples, args.epochs, args.worker[1])
        return
    results = {}
    for dtype in args.dtypes.split(","):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, __file__, "--examples", str(args.examples), "--epochs", str(args.epochs)]
            subprocess.run([*cmd, "--worker", dtype, out.name], check=True)
            results[dtype] = json.loads(Path(out.name).read_text())
    for r in results.values():
        r["median_epoch_s"] = statistics.median(r["epoch_seconds"][1:] or r["epoch_seconds"])
    first = next(iter(results))  # speed-ups against the first dtype listed
    print(f"{'dtype':<22} {'s/epoch':>8} {'train fit':>10}")
    for d, r in results.items():
        print(f"{d:<22} {r['median_epoch_s']:>8.2f} {100 * r['train_fit']:>9.1f}%")
    for d, r in results.items():
        r["speedup"] = results[first]["median_epoch_s"] / r["median_epoch_s"]
        print(f"{d}: {r['speedup']:.2f}x {first}'s epoch speed ({args.examples} examples, {args.epochs} epochs)")
    if args.output:
        record = {"machine": platform.processor() or platform.machine(), "examples": args.examples, "runs": results}
        args.output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
