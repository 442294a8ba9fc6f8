"""The Slurm launch files, by construction and a dry run: bash syntax, the `#SBATCH` header, and the
`slick-hf annotate` command they would run, parsed by the real argument parser."""

import shlex
import subprocess
from pathlib import Path

import pytest

from slick_hf.annotate.factory import ExecutorArguments
from slick_hf.cli.parsing import parse
from slick_hf.configs import AnnotateArguments
from slick_hf.core.slick import SlickConfig
from slick_hf.data.formats import DataFormat
from slick_hf.engines.factory import EngineArguments

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "slurm").glob("*.sbatch"))
ANNOTATE = (AnnotateArguments, EngineArguments, SlickConfig, DataFormat, ExecutorArguments)


def dry_run(script: Path, *args: str) -> list[list[str]]:
    out = subprocess.run(
        ["bash", str(script), *args], env={"DRY_RUN": "1", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return [shlex.split(line) for line in out.stdout.splitlines()]


def test_there_are_launch_files():
    assert {p.name for p in SCRIPTS} == {"annotate_ray.sbatch", "annotate_vllm.sbatch"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_launch_file_is_valid_bash_with_a_slurm_header(script: Path):
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "#SBATCH --nodes=" in text and "#SBATCH --gpus-per-node=" in text
    assert "set -euo pipefail" in text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_dry_run_annotate_command_parses(script: Path, tmp_path: Path):
    commands = dry_run(script, "Qwen/Qwen2.5-7B", "geo", str(tmp_path / "out"), "--limit-per-relation", "5")
    (annotate,) = [c for c in commands if c[:2] == ["slick-hf", "annotate"]]
    argv = annotate[2:]
    assert argv[-2:] == ["--limit-per-relation", "5"]  # extra flags reach slick-hf
    if "ray" in script.name:
        pytest.importorskip("ray")
        # every node runs a Ray process, the head first; one worker per GPU of the allocation
        starts = [c for c in commands if "ray" in c and "start" in c]
        assert "--head" in starts[0] and all("--address=node1:6379" in c for c in starts[1:])
        argv += ["--device", "cpu"]  # this machine has no GPU; the launch file asks for cuda
        args, engine, _, _, executor = parse(ANNOTATE, argv, "annotate")
        assert executor.executor == "ray" and executor.ray_address == "node1:6379"
        assert executor.num_workers == 16 and executor.threads() == 8
    else:
        serves = [c for c in commands if "vllm" in c]
        assert len(serves) == 2 and all("--enable-prefix-caching" in c for c in serves)
        args, engine, _, _, executor = parse(ANNOTATE, argv, "annotate")
        assert engine.engine == "openai" and engine.endpoint == ["http://node1:8000", "http://node2:8000"]
        assert executor.executor == "local"
    assert args.model == "Qwen/Qwen2.5-7B" and args.dataset == "geo" and args.limit_per_relation == 5
