"""SliCK annotation on a local Ray: worker counts and threads side by side (one run), same examples.

Every configuration annotates the same geo train examples (fresh journal each time) with the fast
engine. `--workers` lists configurations as `N` (N workers of `--worker-threads` torch threads) or
`NxT` (N workers of T threads). Reported per configuration: wall time of the annotation (workers
already started: model loading is reported apart), examples/s, the speed-up over the first
configuration, each worker's peak RSS (VmHWM), which earlier configurations gave the same rows, and
how many examples' categories differ from the first one's (bf16 products split over another number
of threads round differently).
With the default chunks of 64 examples, a multiple of 128 examples splits evenly over 2 workers.

    python benchmarks/ray_scaling.py --examples 256 --workers 1x2,1,2 --output benchmarks/results/ray_scaling.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path


def peak_rss_gb(pid: int) -> float:
    """A process's peak resident set (VmHWM), in GB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6
    return float("nan")


def main() -> None:
    import ray

    from slick_hf.annotate.journal import annotate_dataset
    from slick_hf.annotate.ray_executor import RayExecutor
    from slick_hf.annotate.rows import exemplar_pools_by_relation
    from slick_hf.core.slick import SlickConfig
    from slick_hf.data import load_questions
    from slick_hf.engines.factory import EngineArguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument(
        "--workers", default="1x2,1,2", help="comma-separated N (workers) or NxT (N workers, T threads)"
    )
    parser.add_argument("--worker-threads", type=int, default=1)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/ray_scaling.json"))
    args = parser.parse_args()

    splits = load_questions("geo", splits=("train", "dev"), relations="capital,city_country,city_state")[0]
    questions = splits["train"].shuffle(seed=0).select(range(args.examples))
    config = SlickConfig()
    pools = exemplar_pools_by_relation(splits["dev"], sorted(set(questions["relation"])), config)
    engine_args = EngineArguments(dtype=args.dtype)
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    results, annotated = [], {}
    for item in args.workers.split(","):
        n, _, t = item.partition("x")
        n, threads = int(n), int(t or args.worker_threads)
        t0 = time.perf_counter()
        executor = RayExecutor("smollm2-135m", engine_args, num_workers=n, threads=threads)
        pids = executor.worker_pids()
        started = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as work:
            t0 = time.perf_counter()
            rows = annotate_dataset(questions, pools, executor, config, Path(work), desc=f"{n} worker(s)").to_list()
            seconds = time.perf_counter() - t0
        rss = [round(peak_rss_gb(pid), 2) for pid in pids]
        executor.close()
        label = f"{n}x{threads}"
        first = next(iter(annotated.values()), rows)
        results.append(
            {
                "configuration": label,
                "workers": n,
                "threads_per_worker": threads,
                "startup_seconds": round(started, 1),
                "seconds": round(seconds, 1),
                "examples_per_second": round(len(rows) / seconds, 3),
                "worker_peak_rss_gb": rss,
                "same_rows_as": [other for other, earlier in annotated.items() if earlier == rows],
                "categories_differing_from_first": sum(
                    a["slick_category"] != b["slick_category"] for a, b in zip(rows, first, strict=True)
                ),
            }
        )
        annotated[label] = rows
        print(json.dumps(results[-1]), flush=True)
    ray.shutdown()
    base = results[0]["seconds"]
    for r in results:
        r["speedup"] = round(base / r["seconds"], 2)
    out = {"examples": args.examples, "dtype": args.dtype, "machine": platform.processor(), "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
