"""Requests/s of the server engines against 1, 2 and 4 endpoints (not a test; run by hand).

Each endpoint is a test server in its own process (`python -m slick_hf.testing.tgi_server
--fake`): no model, a fixed answer after a fixed latency, and a fixed number of slots (requests
served at once), so one endpoint has a known capacity (slots / latency) and the CPU is not the
bottleneck. With enough client concurrency, throughput should grow close to linearly with the
number of endpoints; the table shows how close.

    python benchmarks/endpoints_throughput.py [--engine tgi|openai] [--latency 0.2] [--slots 4]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request

from slick_hf.engines.base import GenerationRequest
from slick_hf.engines.factory import engine_class


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_servers(k: int, latency: float, slots: int) -> tuple[list[str], list[subprocess.Popen]]:
    urls, procs = [], []
    for _ in range(k):
        port = free_port()
        cmd = [sys.executable, "-m", "slick_hf.testing.tgi_server", "--fake", "--port", str(port)]
        cmd += ["--latency", str(latency), "--slots", str(slots)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    for url in urls:
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"test server at {url} did not start") from None
                time.sleep(0.1)
    return urls, procs


def run(engine_kind: str, k: int, requests: int, latency: float, slots: int, concurrency: int) -> dict:
    urls, procs = start_servers(k, latency, slots)
    try:
        with engine_class(engine_kind)("slick-hf/fake-model", urls, concurrency=concurrency, progress=False) as eng:
            eng.generate([GenerationRequest(f"Q: warm-up {i}\nA:") for i in range(k * slots)])
            before, sent_before = eng.stats.succeeded, dict(eng.stats.per_endpoint)
            batch = [GenerationRequest(f"Q: question {i}\nA:") for i in range(requests)]
            start = time.perf_counter()
            out = eng.generate(batch)
            seconds = time.perf_counter() - start
            assert out == [[" Paris"]] * requests
            done = eng.stats.succeeded - before
            split = sorted((n - sent_before[u] for u, n in eng.stats.per_endpoint.items()), reverse=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    return {"endpoints": k, "requests": done, "seconds": seconds, "rps": done / seconds, "split": split}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["tgi", "openai"], default="tgi")
    parser.add_argument("--endpoints", default="1,2,4")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request on the server")
    parser.add_argument("--slots", type=int, default=4, help="requests each server serves at once")
    parser.add_argument("--requests-per-endpoint", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    counts = [int(k) for k in args.endpoints.split(",")]
    capacity = args.slots / args.latency
    rows = [
        run(args.engine, k, args.requests_per_endpoint * k, args.latency, args.slots, args.concurrency) for k in counts
    ]
    print(
        f"\n{args.engine} engine, fake servers: {args.latency * 1000:g} ms per request, {args.slots} slots each "
        f"(capacity {capacity:g} req/s per endpoint), client concurrency {args.concurrency}\n"
    )
    print("| endpoints | requests | seconds | requests/s | speed-up | of ideal | requests per endpoint |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        speedup = r["rps"] / rows[0]["rps"]
        print(
            f"| {r['endpoints']} | {r['requests']} | {r['seconds']:.2f} | {r['rps']:.1f} | {speedup:.2f}x "
            f"| {r['rps'] / (capacity * r['endpoints']):.0%} | {' / '.join(map(str, r['split']))} |"
        )


if __name__ == "__main__":
    main()
