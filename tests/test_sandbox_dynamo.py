"""torch._dynamo in the sandbox: not imported for an optimizer, imported (and used as is) when a job needs it."""

import numpy as np
import torch

from grader.limits import Limits
from grader.sandbox import Call, CallStatus, Job, RunStatus, Sandbox

LIMITS = Limits(wall_seconds=120, cpu_seconds=120)
ARRAYS = {"x": np.random.default_rng(5).normal(size=(8, 2)), "y": np.random.default_rng(6).normal(size=(8, 1))}

TRAINING = """
import sys
import torch

def train(x, y):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 10), torch.nn.Sigmoid(), torch.nn.Linear(10, 1)).double()
    x, y = torch.tensor(x), torch.tensor(y)
    for optimizer in (torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), torch.optim.Adam(net.parameters(), lr=0.01)):
        for _ in range(3):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            optimizer.step()
        optimizer.load_state_dict(optimizer.state_dict())
    return {"W1": net[0].weight, "W2": net[2].weight, "dynamo_imported": float("sympy" in sys.modules)}
"""

COMPILING = (
    TRAINING
    + """
def compiled(x, y):
    import torch._dynamo.config  # a submodule: the real package
    double = torch.compile(lambda v: torch.sigmoid(v) * 2, backend="eager")
    out = double(torch.tensor(x))
    served = torch.optim.Optimizer.add_param_group.__wrapped__
    result = train(x, y)  # optimizers again, now under the real torch._dynamo
    return {**result, "out": out, "real_disable": [torch._dynamo.disable.__module__],
            "re_wrapped": float(served.__dict__.get("__dynamo_disable") not in (None, served))}
"""
)


def expected_training() -> dict[str, np.ndarray]:
    """The same code run by plain torch here, outside the sandbox."""
    namespace: dict = {}
    exec(TRAINING, namespace)
    result = namespace["train"](ARRAYS["x"], ARRAYS["y"])
    return {name: result[name].detach().numpy() for name in ("W1", "W2")}


def run(sandbox, source: str, function: str):
    result = sandbox.run(
        Job(filename="a1.py", cells=[source], arrays=ARRAYS, calls=[Call(id="c", function=function, args=["x", "y"])]),
        LIMITS,
    )
    assert result.status == RunStatus.ok, result.detail
    assert result.calls["c"].status == CallStatus.ok, result.calls["c"].message
    return result.calls["c"]


def test_optimizers_in_a_job_step_exactly_as_in_torch_without_importing_dynamo(bwrap_sandbox):
    call = run(bwrap_sandbox, TRAINING, "train")
    expected = expected_training()
    np.testing.assert_array_equal(call.values["W1"], expected["W1"])
    np.testing.assert_array_equal(call.values["W2"], expected["W2"])
    assert call.values["dynamo_imported"] == 0.0


def test_torch_compile_in_a_job_imports_the_real_dynamo_and_optimizers_use_it_from_then_on(bwrap_sandbox):
    call = run(bwrap_sandbox, COMPILING, "compiled")
    np.testing.assert_array_equal(call.values["out"], (torch.sigmoid(torch.tensor(ARRAYS["x"])) * 2).numpy())
    assert call.texts["real_disable"] == ["torch._dynamo.decorators"]
    assert call.values["re_wrapped"] == 1.0
    assert call.values["dynamo_imported"] == 1.0
    expected = expected_training()
    np.testing.assert_array_equal(call.values["W1"], expected["W1"])
    np.testing.assert_array_equal(call.values["W2"], expected["W2"])


def test_a_job_that_imported_dynamo_leaves_the_next_job_of_the_same_worker_without_it(bwrap_sandbox):
    with Sandbox(jobs=1, mode="bwrap") as sandbox:  # one worker: both jobs are its children
        assert run(sandbox, COMPILING, "compiled").values["dynamo_imported"] == 1.0
        assert run(sandbox, TRAINING, "train").values["dynamo_imported"] == 0.0
