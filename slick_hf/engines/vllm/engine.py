"""`--engine vllm`: vLLM's offline `LLM` (prefix caching, `n` samples per request, top-k, stop strings).

vLLM pins other transformers versions than slick-hf, so it lives in its own virtual environment
(`make install-vllm` builds `.venv-vllm`), and the engine runs it there, in a worker process
(`slick_hf.engines.vllm.worker`) it talks to over pipes. Which Python runs the worker
(`vllm_python`): `SLICK_HF_VLLM_PYTHON` when set; else this Python when it can import vllm (a GPU
machine with vLLM installed beside slick-hf); else `.venv-vllm/bin/python` in the current folder or in
the slick-hf checkout.

Sampling: on GPUs each sampled request carries its own seed, so samples do not depend on batching;
vLLM on CPU cannot seed single requests, so there the samples come from the engine's stream (seeded
once): `info()["seeded_samples"]` says which, and annotation cards say the samples are then not
reproducible.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from slick_hf.engines.base import Engine, GenerationRequest
from slick_hf.errors import SlickError

PYTHON_ENV = "SLICK_HF_VLLM_PYTHON"
VENV = ".venv-vllm"
# requests sent to the worker in one line: vLLM schedules them together
BATCH_REQUESTS = 256


def vllm_python() -> str | None:
    """The Python that runs vLLM (see the module doc), or None when there is none."""
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    for root in (Path.cwd(), Path(_package_root())):
        candidate = root / VENV / "bin" / "python"
        if candidate.is_file():
            return str(candidate)
    return None


def vllm_cpu_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` with vLLM's CPU settings where it leaves them unset: the CPU platform, and 2 GiB of KV cache
    (SliCK prompts are short; vLLM's own default takes most of the machine's memory, so a second vLLM
    process, a server beside an in-process engine, could not start)."""
    return {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "2", **env}


class VLLMEngine(Engine):
    """vLLM's `LLM` in a worker process, with prefix caching; greedy and sampled requests alike."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        batch_size: int = BATCH_REQUESTS,
        device: str = "cpu",
        dtype: str = "float32",
        trust_remote_code: bool = False,
        seed: int = 0,
    ) -> None:
        from slick_hf.models import model_provenance, resolve_model

        python = vllm_python()
        if python is None:
            raise SlickError(
                f"--engine vllm needs vLLM: run `make install-vllm` (it builds {VENV}), or set {PYTHON_ENV} "
                "to the Python of an environment where vllm is installed"
            )
        resolved = resolve_model(model)
        self.provenance = model_provenance(model, resolved)
        self.batch_size, self.dtype, self.device = batch_size, dtype, device
        command = [python, "-m", "slick_hf.engines.vllm.worker", "--model", resolved, "--dtype", dtype]
        command += ["--seed", str(seed)] + (["--trust-remote-code"] if trust_remote_code else [])
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))
        )
        if device == "cpu":
            env = vllm_cpu_environment(env)
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1
        )
        started = self._receive()
        self.worker_info = started["info"]

    def _receive(self) -> dict:
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            code = self.process.wait()
            raise SlickError(f"the vLLM worker stopped (exit code {code}); its log is above")
        message = json.loads(line)
        if "error" in message:
            raise SlickError(f"vLLM: {message['error']}")
        return message

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        """Each request's `n` completions (one for greedy), cut at its stop strings."""
        out: list[list[str]] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = [asdict(r) for r in requests[start : start + self.batch_size]]
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"requests": chunk}) + "\n")
            self.process.stdin.flush()
            out += self._receive()["outputs"]
        return out

    def info(self) -> dict[str, str]:
        """Engine, model id and revision, dtype, device, vLLM's version and whether samples are seeded."""
        return {
            "engine": self.name,
            **self.provenance,
            "dtype": self.dtype,
            "device": str(self.worker_info.get("device", self.device)),
            "vllm_version": str(self.worker_info.get("vllm_version")),
            "seeded_samples": str(bool(self.worker_info.get("seeded_samples"))).lower(),
        }

    def close(self) -> None:
        """End the worker (closing its input ends it; killed if it does not stop)."""
        process = getattr(self, "process", None)
        if process is None or process.poll() is not None:
            return
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _package_root() -> str:
    """The folder holding the slick_hf package, so the worker imports this very checkout's worker module."""
    return str(Path(__file__).resolve().parents[3])
