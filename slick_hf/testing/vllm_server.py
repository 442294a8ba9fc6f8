"""`vllm serve` (vLLM's OpenAI-compatible server) started on 127.0.0.1 from the vLLM environment, for
`--engine openai` against a real vLLM: the tests' fixture and the benchmark use it; `stop_process` stops it."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

from slick_hf.engines.vllm.engine import vllm_cpu_environment, vllm_python
from slick_hf.errors import SlickError
from slick_hf.testing.network import stop_process


def start_vllm_server(
    model_dir: str, port: int, log: Path, dtype: str = "float32", device: str = "cpu", timeout_s: float = 600.0
):
    """Start `vllm serve` for a local model folder on 127.0.0.1:`port` (prefix caching on; on CPU with the
    in-process engine's CPU settings, so both fit on one machine), its output in
    `log`; return (process, base URL) once `/v1/models` answers. SlickError, with the log's tail, when the
    vLLM environment is missing or the server does not come up within `timeout_s` (it is stopped then)."""
    python = vllm_python()
    if python is None:
        raise SlickError("vllm serve needs vLLM: run `make install-vllm`")
    command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--dtype", dtype]
    command += ["--host", "127.0.0.1", "--port", str(port), "--enable-prefix-caching"]
    with Path(log).open("w") as out:
        env = vllm_cpu_environment(dict(os.environ)) if device == "cpu" else dict(os.environ)
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=5)
            return process, url
        except OSError:
            time.sleep(3)
    code = process.poll()
    stop_process(process, 60)
    tail = Path(log).read_text(errors="replace")[-500:]
    why = f"stopped (exit code {code})" if code is not None else f"did not come up within {timeout_s:.0f} s"
    raise SlickError(f"vllm serve {why}; the end of its log {log}: {tail}")
