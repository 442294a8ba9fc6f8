"""slick_hf.memory: per-phase peaks of the resident set, and freed memory handed back.

Run in a fresh process: in the test session's own process, freed but still resident heap from earlier
tests would absorb the allocation without raising the resident set.
"""

import json
import subprocess
import sys

PHASES = """
import json
import time
from slick_hf.memory import peak_rss_bytes, phase_peak, release_freed_memory, reset_peak_rss

record = {}
with phase_peak("big", record):
    block = bytearray(300_000_000)
    block[::4096] = b"x" * len(block[::4096])  # touched pages: 300 MB resident
    del block
with phase_peak("small", record):
    release_freed_memory()
    time.sleep(0.2)
print(json.dumps({"record": record, "peak": peak_rss_bytes(), "reset": reset_peak_rss()}))
"""


def test_a_phase_records_its_own_peak():
    out = json.loads(subprocess.run([sys.executable, "-c", PHASES], capture_output=True, text=True, check=True).stdout)
    record = out["record"]
    assert record["big"]["peak_rss_gb"] >= 0.3
    if record["small"]["reset"]:  # Linux lets a process reset its peak
        assert record["small"]["peak_rss_gb"] < record["big"]["peak_rss_gb"] - 0.2
    assert out["peak"] > 0 and out["reset"] in (True, False)
    assert record["small"]["seconds"] >= 0.2 and record["big"]["seconds"] >= 0.0
