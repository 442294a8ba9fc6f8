"""The built wheel works on its own: annotate then evaluate, from an unrelated working directory.

A fresh venv gets the wheel (not editable); its dependencies are borrowed from the test's own
environment through a path entry, so no slick_hf source can leak in (the editable install's
finder is not loaded: that needs a site directory, not a path entry).
"""

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_annotates_and_evaluates_from_anywhere(tmp_path: Path):
    pytest.importorskip("setuptools")  # the wheel is built without build isolation (no download)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    (wheel,) = wheels.glob("slick_hf-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("PYTHONPATH", None)
    where = subprocess.check_output([python, "-c", "import slick_hf; print(slick_hf.__file__)"], cwd=elsewhere, env=env)
    assert Path(where.decode().strip()).is_relative_to(site)
    cli = [python, "-m", "slick_hf.cli"]
    common = ["--relations", "capital", "--num-prompts", "2", "--num-samples", "2", "--max-new-tokens", "8"]
    subprocess.run(
        [*cli, "annotate", "--splits", "test", "--limit-per-relation", "3", "--output-dir", "ann", *common],
        cwd=elsewhere,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*cli, "evaluate", "--model", "smollm2-135m", "--annotated-dataset", "ann", "--output-dir", "ev"],
        cwd=elsewhere,
        env=env,
        check=True,
        capture_output=True,
    )
    results = json.loads((elsewhere / "ev" / "results.json").read_text())["results"]
    assert results["test"]["count"] == 3
