"""slick_hf.memory: per-phase peaks of the resident set, and freed memory handed back."""

from slick_hf.memory import peak_rss_bytes, phase_peak, release_freed_memory, reset_peak_rss


def test_a_phase_records_its_own_peak():
    record: dict = {}
    with phase_peak("big", record):
        block = bytearray(300_000_000)  # touched pages count: 300 MB resident
        block[::4096] = b"x" * len(block[::4096])
        del block
    with phase_peak("small", record):
        release_freed_memory()
    assert record["big"]["peak_rss_gb"] >= 0.3
    if record["small"]["reset"]:  # Linux lets a process reset its peak
        assert record["small"]["peak_rss_gb"] < record["big"]["peak_rss_gb"] - 0.2
    assert peak_rss_bytes() > 0 and reset_peak_rss() in (True, False)
