"""Measure the sandbox's per-job overhead on a trivial submission and print it (never asserted anywhere).

    python -m grader.sandbox.overhead [--jobs N] [--runs N] [--mode bwrap|fallback]

Prints the wall time per job seen by the caller of Sandbox.run (sequential, one slot), the child's own
wall time (fork to exit), the CPU time of this grader process per job, and the throughput with N slots.
"""

import argparse
import statistics
import threading
import time

import numpy as np

from grader.limits import Limits
from grader.sandbox import Call, Job, Sandbox

TRIVIAL = '''
import numpy as np

def scratch_gradients(x, y, params):
    return {"loss": float(((x @ params["W1"].T).sum() - y.sum()) ** 2), "dW1": np.zeros_like(params["W1"])}
'''


def trivial_job() -> Job:
    rng = np.random.default_rng(0)
    arrays = {"x": rng.random((1, 2)), "y": rng.random((1, 1)), "W1": rng.random((10, 2))}
    return Job(filename="trivial.py", cells=[TRIVIAL], arrays=arrays,
               calls=[Call(id="s", function="scratch_gradients", args=["x", "y", {"W1": "W1"}], scratch=True)])


def measure(mode: str | None, jobs: int, runs: int) -> None:
    job, limits = trivial_job(), Limits()
    started = time.perf_counter()
    with Sandbox(jobs=jobs, mode=mode) as sandbox:
        print(f"mode {sandbox.mode}: {jobs} worker(s) started in {time.perf_counter() - started:.2f} s")
        for _ in range(3):
            sandbox.run(job, limits)  # warm both sides
        walls, childs = [], []
        cpu_before = time.process_time()
        for _ in range(runs):
            t0 = time.perf_counter()
            result = sandbox.run(job, limits)
            walls.append(time.perf_counter() - t0)
            childs.append(result.wall_seconds)
            assert result.status.value == "ok", result.detail
        cpu = (time.process_time() - cpu_before) / runs
        print(f"sequential, {runs} jobs: per job median {statistics.median(walls) * 1000:.1f} ms, "
              f"p90 {sorted(walls)[int(runs * 0.9)] * 1000:.1f} ms; child fork-to-exit median "
              f"{statistics.median(childs) * 1000:.1f} ms; grader CPU {cpu * 1000:.1f} ms per job")
        per_thread = max(1, runs // jobs)
        threads = [threading.Thread(target=lambda: [sandbox.run(job, limits) for _ in range(per_thread)])
                   for _ in range(jobs)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - t0
        print(f"parallel, {jobs} slot(s): {per_thread * jobs / elapsed:.1f} jobs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--mode", choices=["bwrap", "fallback"], default=None)
    args = parser.parse_args()
    measure(args.mode, args.jobs, args.runs)


if __name__ == "__main__":
    main()
