# mistake at layer 1: hidden_derivative_omitted (in scratch_gradients) — δ1 = W2ᵀδ2, σ'(z1) forgotten in the first layer only
import numpy as np
import torch


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def scratch_gradients(x, y, params):
    W1, b1 = params["W1"], params["b1"]
    W2, b2 = params["W2"], params["b2"]
    W3, b3 = params["W3"], params["b3"]

    # forward
    z1 = x @ W1.T + b1
    a1 = sigmoid(z1)
    z2 = a1 @ W2.T + b2
    a2 = sigmoid(z2)
    y_hat = a2 @ W3.T + b3
    loss = np.sum((y_hat - y) ** 2)

    # backward
    d3 = 2 * (y_hat - y)                      # dL/dz3
    dW3 = d3.T @ a2
    db3 = d3.sum(axis=0)
    d2 = (d3 @ W3) * a2 * (1 - a2)            # dL/dz2
    dW2 = d2.T @ a1
    db2 = d2.sum(axis=0)
    d1 = d2 @ W2                              # dL/dz1
    dW1 = d1.T @ x
    db1 = d1.sum(axis=0)
    return {"prediction": y_hat, "loss": loss,
            "dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}


def torch_gradients(x, y, params):
    x = torch.tensor(x)
    y = torch.tensor(y)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h1 = torch.sigmoid(x @ p["W1"].T + p["b1"])
    h2 = torch.sigmoid(h1 @ p["W2"].T + p["b2"])
    y_hat = h2 @ p["W3"].T + p["b3"]
    loss = ((y_hat - y) ** 2).sum()
    loss.backward()
    out = {"prediction": y_hat.detach(), "loss": loss.detach()}
    for k, v in p.items():
        out["d" + k] = v.grad
    return out
