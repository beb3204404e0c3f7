"""Write the synthetic .dat samples beside this file the way students' notebooks write them.

Run once with `python tests/data/dat/write_samples.py`; the outputs are kept as data. One real torch
backward pass of a 2-4-3-1 sigmoid net (float64, seed 6207) gives the known gradients, saved in torch's
layout to known_gradients.json; each sample prints them in one format students use (see the comments).
"""

import csv
import io
import json
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(2, 4), torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.fc3(torch.sigmoid(self.fc2(torch.sigmoid(self.fc1(x)))))


def to_csv(path: Path, header: list, rows: list, index: bool = True) -> None:
    """What DataFrame.to_csv writes: an index column, minimal quoting, str() of every cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(([""] if index else []) + header)
    for i, row in enumerate(rows):
        writer.writerow(([i] if index else []) + [str(cell) for cell in row])
    path.write_text(buffer.getvalue())


def main() -> None:
    torch.manual_seed(6207)
    model = Net().double()
    x = torch.tensor([[0.3, 0.7]], dtype=torch.float64, requires_grad=True)
    y = (x.detach() ** 2).sum() / 2
    pred = model(x)
    loss = ((pred - y) ** 2).sum()
    loss.backward()
    g = {}
    for l, fc in enumerate([model.fc1, model.fc2, model.fc3], start=1):
        g[f"dW{l}"], g[f"db{l}"] = fc.weight.grad.numpy().copy(), fc.bias.grad.numpy().copy()
    keys = list(g)
    known = {
        "layers": [2, 4, 3, 1],
        "scientific_scale": 1e-7,
        "prediction": pred.item(),
        "loss": loss.item(),
        "gradients": {k: v.tolist() for k, v in g.items()},
    }
    (OUT / "known_gradients.json").write_text(json.dumps(known, indent=1))

    with open(OUT / "numpy-repr-commas.dat", "w") as f:  # `name = repr(array)`, out x in
        for k in keys:
            f.write(f"{k} = {g[k]!r}\n")
        f.write(f"loss = {np.float64(loss.item())!r}\n")
    with open(OUT / "numpy-str-in-out.dat", "w") as f:  # str() without commas, x @ W layout (in x out)
        for l in (1, 2, 3):
            f.write(f"Gradient of W{l}:\n{g[f'dW{l}'].T}\n")
            f.write(f"Gradient of b{l}:\n{g[f'db{l}']}\n")
    np.set_printoptions(precision=4)  # students set it once and leave it
    with open(OUT / "numpy-scientific.dat", "w") as f:  # tiny gradients (after training): scientific
        for l in (1, 2, 3):
            f.write(f"W{l}.grad\n{g[f'dW{l}'] * 1e-7}\n")
            f.write(f"b{l}.grad\n{g[f'db{l}'] * 1e-7}\n")
    names = ["dLdw1", "dLdb1", "dLdw2", "dLdb2", "dLdw3", "dLdb3"]
    to_csv(OUT / "pandas-csv.dat", ["name", "value"], [[n, g[k]] for n, k in zip(names, keys)])
    to_csv(
        OUT / "pandas-csv-tensors.dat",
        ["layer", "gradient"],
        [[n, p.grad] for n, p in model.named_parameters()],
        index=False,
    )
    to_csv(OUT / "pandas-csv-wide.dat", keys, [[g[k] for k in keys]])
    with open(OUT / "list-of-arrays.dat", "w") as f:
        f.write(f"gradients: {[g[k] for k in keys]}\n")
    with open(OUT / "list-of-tensors.dat", "w") as f:
        f.write(f"{[p.grad for p in model.parameters()]}\n")
    with open(OUT / "input-layer-labels.dat", "w") as f:  # output bias before output weight
        for name, l in (("Input_layer", 1), ("Hidden_layer", 2), ("Output_layer", 3)):
            parts = [("w", g[f"dW{l}"]), ("b", g[f"db{l}"])]
            for p, v in parts[::-1] if l == 3 else parts:
                f.write(f"{name} {p}_gradient:\n{v}\n")
    with open(OUT / "torch-float64.dat", "w") as f:  # module repr, input, named_parameters, prediction, loss
        f.write(f"{model}\n")
        f.write(f"x: {x}\n")
        for n, p in model.named_parameters():
            f.write(f"{n}\n{p.grad}\n")
        f.write(f"Predicted y: {pred}\n")
        f.write(f"Loss: {str(loss)}\n")
    with open(OUT / "python-lists.dat", "w") as f:  # .tolist(), in x out
        for l in (1, 2, 3):
            f.write(f"dL/dW{l}: {g[f'dW{l}'].T.tolist()}\n")
            f.write(f"dL/db{l}: {g[f'db{l}'].tolist()}\n")
    with open(OUT / "savetxt.dat", "w") as f:
        for k in keys:
            np.savetxt(f, g[k], header=k)
    with open(OUT / "dict-repr.dat", "w") as f:
        f.write(str({k: g[k] for k in keys}) + "\n")


if __name__ == "__main__":
    main()
