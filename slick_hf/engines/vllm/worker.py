"""The process that runs vLLM's `LLM` for `VLLMEngine`: JSON lines in on stdin, JSON lines out on stdout.

It runs with the Python of the vLLM environment (`make install-vllm`: vLLM pins other transformers
versions than slick-hf, so it gets its own virtual environment), and imports nothing of slick-hf but
this module. The protocol, one JSON object per line:

- started: the worker answers `{"ready": true, "info": {...}}` once the model is loaded, or
  `{"error": "..."}` and exits;
- `{"requests": [{"prompt", "n", "temperature", "top_k", "max_new_tokens", "seed", "stop"}, ...]}`
  is answered with `{"outputs": [[text, ...], ...]}` (one list of `n` completions per request) or
  `{"error": "..."}`;
- end of input ends the worker.

vLLM logs to stderr; stdout carries the protocol alone (the worker keeps the original stdout for
it and points file descriptor 1 at stderr before vLLM is imported).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def per_request_seeds_supported() -> bool:
    """Whether this vLLM platform honours `SamplingParams(seed=...)`: on CPU a seeded request stops the
    engine core ("CPU Generator does not use offset"), so samples are drawn from the engine's own stream."""
    from vllm.platforms import current_platform

    return not current_platform.is_cpu()


def sampling_params(request: dict, seeded: bool):
    """vLLM `SamplingParams` of one request (greedy when temperature is 0)."""
    from vllm import SamplingParams

    greedy = request["temperature"] == 0.0
    return SamplingParams(
        n=1 if greedy else request["n"],
        temperature=request["temperature"],
        top_k=request["top_k"] if request["top_k"] and not greedy else 0,
        max_tokens=request["max_new_tokens"],
        stop=list(request["stop"]) or None,
        seed=request["seed"] if seeded and not greedy else None,
    )


def cut(text: str, stop: list[str]) -> str:
    """A completion cut at its first stop string (vLLM stops there, this keeps the rule in one place)."""
    ends = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[: min(ends)] if ends else text


def serve(args: argparse.Namespace, out) -> None:
    """Load the model, say so, then answer request lines until stdin closes."""
    import vllm
    from vllm import LLM

    seeded = per_request_seeds_supported()
    llm = LLM(
        model=args.model,
        dtype=args.dtype,
        seed=args.seed,
        enable_prefix_caching=True,
        trust_remote_code=args.trust_remote_code,
        max_model_len=args.max_model_len,
    )
    info = {
        "vllm_version": vllm.__version__,
        "device": "cpu" if not seeded else "cuda",
        "seeded_samples": seeded,
    }
    write(out, {"ready": True, "info": info})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            requests = json.loads(line)["requests"]
            results = llm.generate(
                [r["prompt"] for r in requests], [sampling_params(r, seeded) for r in requests], use_tqdm=False
            )
            outputs = [[cut(c.text, r["stop"]) for c in res.outputs] for r, res in zip(requests, results, strict=True)]
        except Exception as err:  # the parent turns this into one clear error line
            write(out, {"error": f"{type(err).__name__}: {err}"})
            continue
        write(out, {"outputs": outputs})


def write(out, message: dict) -> None:
    """One protocol line, flushed."""
    out.write(json.dumps(message) + "\n")
    out.flush()


def main(argv: list[str] | None = None) -> None:
    """Entry point: `python -m slick_hf.engines.vllm.worker --model PATH --dtype float32`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--trust-remote-code", action="store_true")
    args = parser.parse_args(argv)
    out = os.fdopen(os.dup(1), "w")  # the protocol's stdout; everything else printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        serve(args, out)
    except Exception as err:
        write(out, {"error": f"{type(err).__name__}: {err}"})
        sys.exit(1)


if __name__ == "__main__":
    main()
