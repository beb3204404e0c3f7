# BS6207 Assignment 1, computed in float32 throughout (torch's default dtype), as most students do.
import numpy as np
import torch


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def scratch_gradients(x, y, params):
    x = x.astype(np.float32)
    y = y.astype(np.float32)
    p = {k: v.astype(np.float32) for k, v in params.items()}
    z1 = x @ p["W1"].T + p["b1"]
    a1 = sigmoid(z1)
    z2 = a1 @ p["W2"].T + p["b2"]
    a2 = sigmoid(z2)
    y_hat = a2 @ p["W3"].T + p["b3"]
    loss = np.sum((y_hat - y) ** 2)
    d3 = 2 * (y_hat - y)
    d2 = (d3 @ p["W3"]) * a2 * (1 - a2)
    d1 = (d2 @ p["W2"]) * a1 * (1 - a1)
    return {"prediction": y_hat, "loss": loss,
            "dW3": d3.T @ a2, "db3": d3.sum(axis=0),
            "dW2": d2.T @ a1, "db2": d2.sum(axis=0),
            "dW1": d1.T @ x, "db1": d1.sum(axis=0)}


def torch_gradients(x, y, params):
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 10), torch.nn.Sigmoid(),
        torch.nn.Linear(10, 10), torch.nn.Sigmoid(),
        torch.nn.Linear(10, 1),
    )
    with torch.no_grad():
        for i, layer in zip((1, 2, 3), (net[0], net[2], net[4])):
            layer.weight.copy_(torch.from_numpy(params[f"W{i}"]))
            layer.bias.copy_(torch.from_numpy(params[f"b{i}"]))
    y_hat = net(torch.from_numpy(x).float())
    loss = ((y_hat - torch.from_numpy(y).float()) ** 2).sum()
    net.zero_grad()
    loss.backward()
    grads = {"prediction": y_hat.detach(), "loss": loss.item()}
    for i, layer in zip((1, 2, 3), (net[0], net[2], net[4])):
        grads[f"dW{i}"] = layer.weight.grad
        grads[f"db{i}"] = layer.bias.grad
    return grads
