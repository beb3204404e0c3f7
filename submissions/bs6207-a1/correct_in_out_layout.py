# BS6207 Assignment 1 — forward and backward pass of a 2-10-10-1 sigmoid network.
# My own backprop follows the lecture notes: row vectors and W of shape (in, out), a layer is x @ W + b,
# so every weight gradient h^T @ delta comes out (in, out) as well: dW1 (2, 10), dW2 (10, 10), dW3 (10, 1).
import numpy as np
import torch


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def scratch_gradients(x, y, params):
    # params come in torch's layout (out, in); I turn them into the (in, out) of the notes
    W1, W2, W3 = params["W1"].T, params["W2"].T, params["W3"].T
    b1, b2, b3 = params["b1"], params["b2"], params["b3"]

    # forward
    h1 = sigmoid(x @ W1 + b1)
    h2 = sigmoid(h1 @ W2 + b2)
    y_hat = h2 @ W3 + b3
    loss = np.sum((y_hat - y) ** 2)

    # backward: delta_l = dL/dz_l
    delta3 = 2 * (y_hat - y)
    delta2 = (delta3 @ W3.T) * h2 * (1 - h2)
    delta1 = (delta2 @ W2.T) * h1 * (1 - h1)
    return {
        "prediction": y_hat, "loss": loss,
        "dW1": x.T @ delta1, "db1": delta1.sum(axis=0),
        "dW2": h1.T @ delta2, "db2": delta2.sum(axis=0),
        "dW3": h2.T @ delta3, "db3": delta3.sum(axis=0),
    }


def torch_gradients(x, y, params):
    x = torch.tensor(x)
    y = torch.tensor(y)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h1 = torch.sigmoid(torch.nn.functional.linear(x, p["W1"], p["b1"]))
    h2 = torch.sigmoid(torch.nn.functional.linear(h1, p["W2"], p["b2"]))
    y_hat = torch.nn.functional.linear(h2, p["W3"], p["b3"])
    loss = ((y_hat - y) ** 2).sum()
    loss.backward()
    out = {"prediction": y_hat.detach(), "loss": loss.detach()}
    for k, v in p.items():
        out["d" + k] = v.grad
    return out
