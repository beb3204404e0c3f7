"""The sample hand-ins in submissions/*-notebooks/ are real notebooks that really run.

Each sample is executed the way a student's kernel would run it, outside the grader: cell by cell in one
namespace, in a subprocess with torch, `!`/`%` lines dropped, `google.colab` faked, writes to /content/…
landing in the work directory by file name. Only cells the sample's metadata marks may raise.
"""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.notebook.saved_outputs import compare_cells

SUBMISSIONS = Path(__file__).resolve().parents[1] / "submissions"
SAMPLES = SUBMISSIONS / "bs6207-a1-notebooks"
STEMS = [
    "correct",
    "colab_drive_path",
    "unused_pandas",
    "in_out_layout",
    "four_decimals",
    "architecture_2_10_5_1",
    "missing_factor_2",
    "after_10_sgd_steps",
    "unseeded",
    "cell_raises",
    "scratch_with_torch_ops",
    "pandas_csv_dat",
    "no_dat_files",
    "run_out_of_order",
    "saved_by_other_cpu",
    "in_out_square",
    "in_out_variables",
    "scratch_requires_grad",
    "copied_from_autograd",
    "decoy_net_first",
    "second_net_for_scratch",
    "net_in_unrun_cell",
    "missing_factor_2_attributes",
    "pandas_first_line",
    "tensorflow_used",
    "colab_gpu_fallback",
    "colab_cuda_hardcoded",
    "raw_tensors",
    "raw_tensors_x_at_w",
    "numpy_class_attributes",
    "raw_forward_sums",
    "printed_in_a_function",
    "printed_copied_from_autograd",
    "whole_data_forward_first",
]
# Samples of the other notebook rubrics, as paths under submissions/ (a student's folder: folder/notebook).
OTHER_SAMPLES = [
    "deep-relu-notebooks/correct",
    "deep-relu-notebooks/extra_linear_layer",
    "deep-relu-notebooks/relu_derivative_at_linear_layer",
    "deep-relu-notebooks/append_rerun/append_rerun",
    "deep-relu-notebooks/graph_nodes_typed_torch1",
    "deep-relu-notebooks/graph_without_leaves",
    *(
        f"softmax-dropout-notebooks/{stem}"
        for stem in (
            "correct",
            "seed_003",
            "dropout_without_rescaling",
            "dropout_scaled_by_keep_probability",
            "p_used_as_keep_probability",
            "mask_not_in_backward",
            "masks_ignored",
            "unrecoverable_masks",
            "unrecoverable_masks_unscaled",
        )
    ),
]
ALL = STEMS + OTHER_SAMPLES
SAVED_DIFFER = {"unseeded", "run_out_of_order"}  # their saved outputs differ from a top-to-bottom run by design
DAT_FILES = {"torch_autograd.dat", "my_autograd.dat"}
WRITE_NO_FILES = {
    "no_dat_files",
    "scratch_requires_grad",
    "missing_factor_2_attributes",
    "printed_in_a_function",
    "printed_copied_from_autograd",
}  # their gradients are only in variables, or only printed
WRITE_NO_FILES |= {
    s for s in OTHER_SAMPLES if s.startswith("softmax-dropout-notebooks/")
}  # the handout asks them to print

# One warm process: torch imported once (it takes seconds), then one forked child per sample, so no state is
# shared between samples. Each child runs the cells.json of its own work directory there and writes
# cells_result.json (per cell: id, stdout, error).
RUN_CELLS = r'''
import builtins, contextlib, io, json, os, sys, traceback, types
import numpy, torch

def on_cpu():
    """The student's Colab GPU, for a sample whose kernel had one: CUDA tensors are CPU tensors here."""
    from torch.overrides import TorchFunctionMode
    def cpu(value):
        return "cpu" if isinstance(value, (str, torch.device)) and str(value).startswith("cuda") else value
    class OnCpu(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.Tensor.cuda:
                return args[0]
            return func(*map(cpu, args), **{k: cpu(v) for k, v in (kwargs or {}).items()})
    return OnCpu()

def run_cells():
    cells = json.load(open("cells.json"))
    google, colab, drive = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab.drive"))
    drive.mount = lambda mountpoint, *args, **kwargs: print("Mounted at " + mountpoint)
    colab.drive, google.colab = drive, colab
    sys.modules.update({"google": google, "google.colab": colab, "google.colab.drive": drive})

    real_open = builtins.open
    def open_in_cwd(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file).startswith("/content/"):
            file = os.path.basename(os.fspath(file))
        return real_open(file, *args, **kwargs)
    builtins.open = open_in_cwd
    kernel = json.load(real_open("kernel.json"))  # what the student's kernel had that this one may lack
    for name in kernel.get("installed", []):  # imported and never used: an empty module stands in
        sys.modules.setdefault(name, types.ModuleType(name))
    if kernel.get("gpu"):
        on_cpu().__enter__()

    namespace = {"__name__": "__main__"}
    results = []
    for cell in cells:
        out, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(cell["source"], "<cell " + cell["id"] + ">", "exec"), namespace)
        except Exception as exc:
            error = type(exc).__name__ + ": " + str(exc)
        results.append({"id": cell["id"], "stdout": out.getvalue(), "error": error})
    with real_open("cells_result.json", "w") as f:
        json.dump(results, f)

for work in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            os.chdir(work)
            run_cells()
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(status)
    os.waitpid(pid, 0)
'''


def load(stem: str) -> dict:
    folder = SUBMISSIONS if "/" in stem else SAMPLES
    return json.loads((folder / f"{stem}.ipynb").read_text(encoding="utf-8"))


def sample_meta(stem: str) -> dict:
    return load(stem)["metadata"]["backprop_grader_sample"]


def code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def without_magics(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("!", "%")))


def saved_stdout(cell: dict) -> str:
    return "".join(
        "".join(o["text"]) for o in cell["outputs"] if o["output_type"] == "stream" and o["name"] == "stdout"
    )


def saved_differences(stem: str, results: list[dict]) -> list:
    """Where a sample's saved outputs differ from `results` beyond print rounding and float32 noise."""
    cells = code_cells(load(stem))
    return compare_cells(
        [saved_stdout(c) for c in cells],
        [r["stdout"] for r in results],
        [r["error"] is None for r in results],
        ["".join(c["source"]) != without_magics("".join(c["source"])) for c in cells],
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, list[dict] | None, str]]:
    """Every sample run once: its work directory, its per-cell results, and the runner's stderr. A sample whose
    metadata records the order the student ran its cells in (`ran_in_order`) is also run in that order, as
    "<stem> as saved"."""
    works, sources = {}, {}
    for stem in ALL:
        sources[stem] = [c["id"] for c in code_cells(load(stem))]
        if "ran_in_order" in sample_meta(stem):
            sources[f"{stem} as saved"] = sample_meta(stem)["ran_in_order"]
    for key, ids in sources.items():
        work = works[key] = tmp_path_factory.mktemp(key.replace(" ", "_").replace("/", "__"))
        stem = key.removesuffix(" as saved")
        cells = {c["id"]: without_magics("".join(c["source"])) for c in code_cells(load(stem))}
        (work / "cells.json").write_text(json.dumps([{"id": i, "source": cells[i]} for i in ids]), encoding="utf-8")
        (work / "run_cells.py").write_text(RUN_CELLS, encoding="utf-8")  # kept to debug a failure by hand
        (work / "kernel.json").write_text(json.dumps(sample_meta(stem).get("kernel", {})), encoding="utf-8")
    root = tmp_path_factory.mktemp("runner")
    done = subprocess.run(
        [sys.executable, "-c", RUN_CELLS, *map(str, works.values())],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    results = {}
    for stem, work in works.items():
        result = work / "cells_result.json"
        results[stem] = (work, json.loads(result.read_text()) if result.exists() else None, done.stderr)
    return results


def blocks(path: Path) -> list[tuple[str, str]]:
    """(label, text) for a .dat file written as 'label:' lines each followed by a printed array."""
    found: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.rstrip().endswith(":"):
            found.append((line.strip().rstrip(":").strip(), []))
        elif found:
            found[-1][1].append(line)
    return [(label, "\n".join(text)) for label, text in found]


def numbers(text: str) -> np.ndarray:
    text = re.sub(r"grad_fn=<\w+>|dtype=\w+(\.\w+)?", "", text)
    return np.array([float(n) for n in re.findall(r"[-+]?\d+\.\d*(?:[eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+", text)])


def shape(text: str) -> tuple[int, ...]:
    """Shape of one printed 1-D or 2-D array (numpy or torch repr)."""
    count = numbers(text).size
    if "[[" not in text:
        return (count,)
    rows = text.count("[") - 1
    return (rows, count // rows)


def test_the_sample_folder_holds_one_notebook_per_trait():
    assert sorted(p.stem for p in SAMPLES.glob("*.ipynb")) == sorted(STEMS)
    assert [p.name for p in SAMPLES.iterdir() if p.suffix != ".ipynb"] == []


@pytest.mark.parametrize("stem", ALL)
def test_every_sample_is_valid_nbformat_4_json_with_ids_and_sources_as_lists(stem):
    notebook = load(stem)
    assert set(notebook) == {"cells", "metadata", "nbformat", "nbformat_minor"}
    assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] >= 5
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) for i in ids)
    for cell in notebook["cells"]:
        assert cell["cell_type"] in {"code", "markdown"} and isinstance(cell["metadata"], dict)
        assert isinstance(cell["source"], list) and all(isinstance(line, str) for line in cell["source"])
        assert all(line.endswith("\n") for line in cell["source"][:-1])
        if cell["cell_type"] == "code":
            assert set(cell) == {"cell_type", "execution_count", "id", "metadata", "outputs", "source"}
            assert cell["execution_count"] is None or isinstance(cell["execution_count"], int)
            assert all(
                o["output_type"] in {"stream", "execute_result", "display_data", "error"} for o in cell["outputs"]
            )
        else:
            assert set(cell) == {"cell_type", "id", "metadata", "source"}
    first = notebook["cells"][0]
    assert first["cell_type"] == "markdown" and "Student: sample" in "".join(first["source"])
    meta = notebook["metadata"]["backprop_grader_sample"]
    assert meta["trait"] == stem.rsplit("/", 1)[-1] and isinstance(meta["expected"], dict) and meta["expected"]
    assert set(meta["writes"]) <= DAT_FILES
    assert set(meta.get("may_raise", {})) <= set(ids)


@pytest.mark.parametrize("stem", ALL)
def test_every_sample_runs_top_to_bottom_with_only_its_marked_cells_raising(runs, stem):
    _, results, stderr = runs[stem]
    assert results is not None, stderr[-3000:]
    may_raise = sample_meta(stem).get("may_raise", {})
    for record in results:
        if record["id"] not in may_raise:
            assert record["error"] is None, f"{stem}: cell {record['id']} raised {record['error']}"
        elif "only where" in may_raise[record["id"]]:  # e.g. pandas imported but not installed here
            exception = may_raise[record["id"]].split(" (only where")[0]
            assert record["error"] is None or record["error"].startswith(exception + ":"), record
        else:  # meant to raise everywhere: it still does
            assert record["error"] and record["error"].startswith(may_raise[record["id"]] + ":"), record


@pytest.mark.parametrize("stem", ALL)
def test_every_sample_writes_the_dat_files_it_claims_and_no_others(runs, stem):
    work, _, _ = runs[stem]
    written = {p.name for p in work.glob("*.dat")}
    assert written == set(sample_meta(stem)["writes"])
    assert all((work / name).stat().st_size > 100 for name in written)
    assert (stem in WRITE_NO_FILES) == (written == set())


@pytest.mark.parametrize("stem", [s for s in ALL if s not in SAVED_DIFFER])
def test_saved_outputs_of_every_seeded_sample_match_a_fresh_run(runs, stem):
    _, results, _ = runs[stem]
    assert len(results) == len(code_cells(load(stem)))
    assert saved_differences(stem, results) == []


def test_the_unseeded_sample_prints_something_else_when_run_again(runs):
    _, results, _ = runs["unseeded"]
    differences = saved_differences("unseeded", results)
    assert differences and differences[0].cell == 2  # x, drawn with no seed: beyond any rounding


def test_the_out_of_order_sample_saved_what_its_cells_print_in_the_order_its_counts_show(runs):
    """Run in the order the student ran them (the model cell twice), the cells print their saved outputs;
    top to bottom, the model cell and what depends on the weights print other numbers."""
    meta, cells = sample_meta("run_out_of_order"), code_cells(load("run_out_of_order"))
    _, replayed, stderr = runs["run_out_of_order as saved"]
    assert replayed is not None, stderr[-3000:]
    last = {record["id"]: record for record in replayed}  # a cell run twice saved its second output
    assert saved_differences("run_out_of_order", [last[c["id"]] for c in cells]) == []
    ran = meta["ran_in_order"]
    counts = [len(ran) - ran[::-1].index(c["id"]) for c in cells]  # each cell's count is that of its last run
    assert len(ran) > len(set(ran)) and [c["execution_count"] for c in cells] == counts
    _, results, _ = runs["run_out_of_order"]
    differences = saved_differences("run_out_of_order", results)
    rerun = next(i for i, c in enumerate(cells, start=1) if ran.count(c["id"]) > 1)
    assert differences and differences[0].cell == rerun


def test_the_sample_saved_by_another_cpu_differs_as_text_but_not_beyond_rounding(runs):
    """Its saved outputs spell grad_fn as torch 1.x did and carry another CPU's last digits: a comparison
    of text would flag it, the comparison number by number does not."""
    _, results, _ = runs["saved_by_other_cpu"]
    cells = code_cells(load("saved_by_other_cpu"))
    saved = "".join(saved_stdout(c) for c in cells)
    assert "grad_fn=<AddmmBackward>" in saved and "grad_fn=<AddmmBackward0>" in "".join(r["stdout"] for r in results)
    assert saved_differences("saved_by_other_cpu", results) == []


def test_the_seeded_correct_notebook_writes_scratch_and_autograd_gradients_that_agree_to_1e_6(runs):
    work, _, _ = runs["correct"]
    torch_blocks, my_blocks = blocks(work / "torch_autograd.dat"), blocks(work / "my_autograd.dat")
    assert [label for label, _ in torch_blocks] == [label for label, _ in my_blocks] and len(torch_blocks) == 6
    shapes = [(10, 2), (10,), (10, 10), (10,), (1, 10), (1,)]
    assert [shape(text) for _, text in torch_blocks] == shapes == [shape(text) for _, text in my_blocks]
    found, expected = (np.concatenate([numbers(t) for _, t in b]) for b in (my_blocks, torch_blocks))
    assert found.size == expected.size == 151
    assert np.abs(found - expected).max() <= 1e-6
    assert np.abs(expected).max() > 1e-2  # real gradients, not zeros


def test_the_in_out_sample_writes_a_2_by_10_first_layer_gradient_to_my_autograd_dat(runs):
    work, _, _ = runs["in_out_layout"]
    mine, torch_ = dict(blocks(work / "my_autograd.dat")), dict(blocks(work / "torch_autograd.dat"))
    assert shape(mine["Input_layer w_gradient"]) == (2, 10)
    assert shape(torch_["Input_layer w_gradient"]) == (10, 2)
    first_mine, first_torch = numbers(mine["Input_layer w_gradient"]), numbers(torch_["Input_layer w_gradient"])
    assert np.allclose(first_mine.reshape(2, 10).T, first_torch.reshape(10, 2), atol=1e-7)


def test_the_missing_factor_2_sample_writes_scratch_gradients_at_half_of_autograd(runs):
    work, _, _ = runs["missing_factor_2"]
    found = np.concatenate([numbers(t) for _, t in blocks(work / "my_autograd.dat")])
    expected = np.concatenate([numbers(t) for _, t in blocks(work / "torch_autograd.dat")])
    assert found.size == expected.size == 151
    assert np.allclose(found, 0.5 * expected, atol=1e-7)


def test_the_four_decimals_sample_writes_both_files_to_4_decimals_and_they_agree_at_that_precision(runs):
    work, _, _ = runs["four_decimals"]
    texts = [(work / name).read_text(encoding="utf-8") for name in ("my_autograd.dat", "torch_autograd.dat")]
    printed = [re.findall(r"-?\d+\.\d*", text) for text in texts]
    assert all(len(n.split(".")[1]) <= 4 for numbers_ in printed for n in numbers_)
    found, expected = (
        np.concatenate([numbers(t) for _, t in blocks(work / name)])
        for name in ("my_autograd.dat", "torch_autograd.dat")
    )
    assert found.size == expected.size == 152  # 151 gradients, then the prediction line
    assert np.abs(found - expected).max() <= 1.01e-4


def test_the_after_10_steps_sample_writes_the_near_zero_gradients_of_a_trained_net(runs):
    work, _, _ = runs["after_10_sgd_steps"]
    text = (work / "torch_autograd.dat").read_text(encoding="utf-8")
    assert text.count("Linear(in_features=") == 3
    gradients = np.concatenate([numbers(t) for _, t in blocks(work / "torch_autograd.dat")])
    assert gradients.size == 151 and 0 < np.abs(gradients).max() < 1e-3


def test_the_pandas_csv_sample_writes_what_dataframe_to_csv_writes_for_arrays_in_cells(runs):
    work, _, _ = runs["pandas_csv_dat"]
    tables = {}
    for name in ("my_autograd.dat", "torch_autograd.dat"):
        text = (work / name).read_text(encoding="utf-8")
        assert text.startswith(',name,gradient\n0,dW1,"[[') and "\r" not in text and text.endswith("\n")
        rows = list(csv.reader(text.splitlines(keepends=True)))
        assert rows[0] == ["", "name", "gradient"]
        assert [row[:2] for row in rows[1:]] == [
            [str(i), n] for i, n in enumerate(["dW1", "db1", "dW2", "db2", "dW3", "db3"])
        ]
        assert rows[1][2].count("\n") == 9  # str() of a 10×2 array, quoted, one line per row
        tables[name] = np.concatenate([numbers(row[2]) for row in rows[1:]])
    assert tables["my_autograd.dat"].size == tables["torch_autograd.dat"].size == 151
    assert np.abs(tables["my_autograd.dat"] - tables["torch_autograd.dat"]).max() <= 1e-6


def test_the_raw_forward_sums_sample_gets_the_same_autograd_gradient_for_every_neuron_of_layer_1(runs):
    """Summing w * x over the whole layer gives every neuron one pre-activation, so one gradient row; its
    numpy forward is a proper MLP, whose rows differ."""
    work, _, _ = runs["raw_forward_sums"]
    autograd = numbers(dict(blocks(work / "torch_autograd.dat"))["w1 grad"]).reshape(10, 2)
    mine = numbers(dict(blocks(work / "my_autograd.dat"))["w1 grad"]).reshape(10, 2)
    assert np.abs(autograd).max() > 1e-3 and np.allclose(autograd, autograd[0])
    assert not np.allclose(mine, mine[0], atol=1e-3)


TRAITS_IN_SOURCE = {
    "colab_drive_path": [r"from google\.colab import drive", r"/content/drive/MyDrive/BS6207/"],
    "unused_pandas": [r"import pandas as pd"],
    "pandas_first_line": [r"\Aimport pandas as pd\nimport torch\n"],
    "tensorflow_used": [r"\nimport tensorflow as tf", r"tf\.GradientTape\(\)"],
    "colab_gpu_fallback": [r"torch\.device\('cuda' if torch\.cuda\.is_available\(\) else 'cpu'\)"],
    "colab_cuda_hardcoded": [r"device = 'cuda'", r"\.to\(device\)", r"\.cuda\(\)"],
    "architecture_2_10_5_1": [r"nn\.Linear\(10, 5\)", r"nn\.Linear\(5, 1\)"],
    "after_10_sgd_steps": [r"optim\.SGD\(net\.parameters\(\), lr=0\.1\)", r"range\(10\)", r"optimizer\.step\(\)"],
    "scratch_with_torch_ops": [r"with torch\.no_grad\(\):"],
    "pandas_csv_dat": [r"# df\.to_csv\('my_autograd\.dat'\)", r"lineterminator='\\n'"],
    "no_dat_files": [r"my_grads = \{\}"],
    "raw_tensors": [r"w1 = torch\.randn\(10, 2, requires_grad=True\)", r"torch\.sigmoid\(", r"loss\.backward\(\)"],
    "raw_tensors_x_at_w": [r"w1 = torch\.randn\(2, 10, requires_grad=True\)", r"x @ w1 \+ b1"],
    "numpy_class_attributes": [r"class MLP:", r"self\.dW1 = ", r"def backward\(self"],
    "raw_forward_sums": [r"return torch\.sum\(w \* inp\) \+ b"],
}


@pytest.mark.parametrize("stem", STEMS)
def test_each_sample_shows_its_trait_in_its_source_and_no_other_known_one(stem):
    source = "\n".join("".join(c["source"]) for c in code_cells(load(stem)))
    for pattern in TRAITS_IN_SOURCE.get(stem, []):
        assert re.search(pattern, source), pattern
    assert ("manual_seed" in source) == (stem != "unseeded")
    assert ("google.colab" in source) == (stem == "colab_drive_path")
    assert bool(re.search(r"^\s*import pandas", source, re.M)) == (stem in ("unused_pandas", "pandas_first_line"))
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    assert "pd." not in code  # pandas is never used
    if stem == "scratch_with_torch_ops":
        scratch = source.split("torch.no_grad()")[1]
        assert not re.search(r"\.backward\(|autograd\.grad|requires_grad", scratch)
