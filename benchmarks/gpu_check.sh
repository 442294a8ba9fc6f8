#!/usr/bin/env bash
# One-command GPU check for a machine with CUDA (not run in CI; this project's machine has no GPU).
# Greedy identity of the in-process engines against plain `generate`, speed, and peak GPU memory, in
# float32 and bfloat16. Today the fast engine falls back to plain `generate` off CPU (its row
# arrangement and attention are built and checked for CPU kernels), and this script says so.
# Then, where vLLM is installed (`make install-vllm VLLM_PACKAGE=vllm`), `--engine vllm` on CUDA: SliCK
# annotation of geo train examples per second (adaptive, bf16), GPU memory in use with vLLM loaded, and
# categories against the plain fp32 engine on a sample.
#   bash benchmarks/gpu_check.sh [PROMPTS]        (default 200 geo prompts)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" - "${1:-200}" <<'PYEOF'
import json, sys, time

import torch

from slick_hf.annotate.rows import exemplar_pools_by_relation
from slick_hf.core.prompts import exemplars_for, render_prompt
from slick_hf.core.slick import SlickConfig
from slick_hf.data import load_questions
from slick_hf.engines.base import GenerationRequest
from slick_hf.engines.fast.engine import TransformersEngine
from slick_hf.engines.plain import PlainTransformersEngine

if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device here")
n = int(sys.argv[1])
dd, _ = load_questions("geo", splits=("train", "dev"))
rows = dd["train"].shuffle(seed=0).select(range(n)).to_list()
config = SlickConfig()
pools = exemplar_pools_by_relation(dd["dev"], sorted({r["relation"] for r in rows}), config)
prompts = [render_prompt(exemplars_for(pools[r["relation"]][i % 10], r["id"], 4), r["question"]) for i, r in enumerate(rows)]
requests = [GenerationRequest(p) for p in prompts]
report = {"device": torch.cuda.get_device_name(0), "prompts": n}
for dtype in ("float32", "bfloat16"):
    out = {}
    for name, cls in (("plain", PlainTransformersEngine), ("fast", TransformersEngine)):
        torch.cuda.reset_peak_memory_stats()
        engine = cls("smollm2-135m", device="cuda", dtype=dtype, batch_size=64)
        t0 = time.perf_counter()
        answers = [o[0] for o in engine.generate(requests)]
        torch.cuda.synchronize()
        out[name] = {"seconds": time.perf_counter() - t0, "peak_gb": torch.cuda.max_memory_allocated() / 2**30,
                     "answers": answers, "fast_path": getattr(engine, "fast", None),
                     "fallback_reason": getattr(engine, "fast_reason", None)}
        engine.close()
    same = sum(a == b for a, b in zip(out["plain"]["answers"], out["fast"]["answers"]))
    report[dtype] = {k: {kk: vv for kk, vv in v.items() if kk != "answers"} for k, v in out.items()}
    report[dtype]["greedy_identical"] = f"{same}/{n}"
from slick_hf.annotate.rows import annotate_rows
from slick_hf.engines.vllm.engine import VLLMEngine, vllm_python

if vllm_python() is None:
    report["vllm"] = "not installed (make install-vllm VLLM_PACKAGE=vllm)"
else:
    sample = rows[: min(32, n)]
    with PlainTransformersEngine("smollm2-135m", device="cuda", dtype="float32", batch_size=64) as plain:
        reference = annotate_rows(sample, pools, plain, config)
    with VLLMEngine("smollm2-135m", device="cuda", dtype="bfloat16") as engine:
        free, total = torch.cuda.mem_get_info()
        t0 = time.perf_counter()
        labels = annotate_rows(rows, pools, engine, config)
        seconds = time.perf_counter() - t0
        report["vllm"] = {
            "examples": n, "examples_per_s": n / seconds, "gpu_memory_in_use_gb": (total - free) / 2**30,
            "info": engine.info(),
            "categories_equal_to_plain_fp32": f"{sum(a['slick_category'] == b['slick_category'] for a, b in zip(labels, reference))}/{len(sample)}",
        }
print(json.dumps(report, indent=2))
PYEOF
