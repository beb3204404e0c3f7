"""Measure the sandbox's per-job overhead on a trivial submission and print it (never asserted anywhere).

    python -m grader.sandbox.overhead [--jobs N] [--runs N] [--mode bwrap|fallback] [--notebook]

Prints the wall time per job seen by the caller of Sandbox.run (sequential, one slot), the child's own
wall time (fork to exit), the CPU time of this grader process per job, and the throughput with N slots.
With --notebook: what notebook mode (Job.observe) adds to an A1-style notebook, the same cells run
with and without observation, interleaved.
"""

import argparse
import statistics
import threading
import time

import numpy as np

from grader.limits import Limits
from grader.sandbox import Call, Job, Sandbox

TRIVIAL = """
import numpy as np

def scratch_gradients(x, y, params):
    return {"loss": float(((x @ params["W1"].T).sum() - y.sum()) ** 2), "dW1": np.zeros_like(params["W1"])}
"""


def trivial_job() -> Job:
    rng = np.random.default_rng(0)
    arrays = {"x": rng.random((1, 2)), "y": rng.random((1, 1)), "W1": rng.random((10, 2))}
    return Job(
        filename="trivial.py",
        cells=[TRIVIAL],
        arrays=arrays,
        calls=[Call(id="s", function="scratch_gradients", args=["x", "y", {"W1": "W1"}], scratch=True)],
    )


NOTEBOOK = [
    "import numpy as np\nimport torch\nimport torch.nn as nn\n",
    "net = nn.Sequential(nn.Linear(2, 10), nn.Sigmoid(), nn.Linear(10, 10), nn.Sigmoid(), nn.Linear(10, 1))\n"
    "x = torch.rand(1, 2)\ny = (x ** 2).sum(dim=1, keepdim=True) / 2\n",
    "loss = ((net(x) - y) ** 2).sum()\nloss.backward()\nprint(loss.item())\n",
    "grads = {f'dW{i}': net[2 * i - 2].weight.grad.numpy() for i in (1, 2, 3)}\n"
    "with open('torch_autograd.dat', 'w') as f:\n    f.write(str(grads))\n",
    "optimizer = torch.optim.SGD(net.parameters(), lr=0.1)\nfor _ in range(STEPS):\n    optimizer.zero_grad()\n"
    "    ((net(x) - y) ** 2).sum().backward()\n    optimizer.step()\n",
]


def measure_notebook(mode: str | None, runs: int) -> None:
    limits = Limits()
    with Sandbox(jobs=1, mode=mode) as sandbox:
        for steps in (10, 1000):
            cells = [cell.replace("STEPS", str(steps)) for cell in NOTEBOOK]
            jobs = {observe: Job(filename="a1.ipynb", cells=cells, observe=observe) for observe in (False, True)}
            walls: dict[bool, list[float]] = {False: [], True: []}
            cpus: dict[bool, list[float]] = {False: [], True: []}
            for job in jobs.values():
                sandbox.run(job, limits)  # warm
            for _ in range(runs):
                for observe, job in jobs.items():
                    cpu = time.process_time()
                    result = sandbox.run(job, limits)
                    cpus[observe].append(time.process_time() - cpu)
                    walls[observe].append(result.wall_seconds)
                    assert result.status.value == "ok", result.detail
            plain, observed = (statistics.median(walls[o]) * 1000 for o in (False, True))
            print(
                f"A1 notebook, {steps} SGD steps: child wall median {plain:.1f} ms plain, {observed:.1f} ms observed "
                f"(+{observed - plain:.1f} ms); grader CPU {statistics.median(cpus[False]) * 1000:.1f} ms plain, "
                f"{statistics.median(cpus[True]) * 1000:.1f} ms observed"
            )


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
        print(
            f"sequential, {runs} jobs: per job median {statistics.median(walls) * 1000:.1f} ms, "
            f"p90 {sorted(walls)[int(runs * 0.9)] * 1000:.1f} ms; child fork-to-exit median "
            f"{statistics.median(childs) * 1000:.1f} ms; grader CPU {cpu * 1000:.1f} ms per job"
        )
        per_thread = max(1, runs // jobs)
        threads = [
            threading.Thread(target=lambda: [sandbox.run(job, limits) for _ in range(per_thread)]) for _ in range(jobs)
        ]
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
    parser.add_argument("--notebook", action="store_true", help="measure what notebook mode adds instead")
    args = parser.parse_args()
    if args.notebook:
        measure_notebook(args.mode, args.runs)
    else:
        measure(args.mode, args.jobs, args.runs)


if __name__ == "__main__":
    main()
