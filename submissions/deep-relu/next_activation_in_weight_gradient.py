# mistake: next_activation_in_weight_gradient (in scratch_gradients) — hidden layers' dW built from their own output
import numpy as np
import torch


def relu(z):
    return np.maximum(z, 0.0)


def scratch_gradients(x, y, params):
    L = sum(1 for name in params if name.startswith("W"))
    hiddens, pre = [], []
    a = x
    for l in range(1, L + 1):
        z = a @ params[f"W{l}"].T + params[f"b{l}"]
        a = relu(z) if l < L else z
        pre.append(z)
        hiddens.append(a)
    prediction = hiddens[-1]
    loss = np.sum((prediction - y) ** 2)

    grads = {}
    # output layer
    dt = 2.0 * (prediction - y)
    grads[f"dW{L}"] = dt.T @ hiddens[L - 2]
    grads[f"db{L}"] = dt.sum(axis=0)
    # hidden layers L-1 .. 2
    for i in range(L - 2, 0, -1):
        dt = (dt @ params[f"W{i + 2}"]) * (pre[i] > 0)
        grads[f"dW{i + 1}"] = dt.T @ hiddens[i]
        grads[f"db{i + 1}"] = dt.sum(axis=0)
    # input layer
    dt = (dt @ params["W2"]) * (pre[0] > 0)
    grads["dW1"] = dt.T @ x
    grads["db1"] = dt.sum(axis=0)
    return {"prediction": prediction, "loss": loss, **grads}


def torch_gradients(x, y, params):
    tensors = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
    L = sum(1 for name in params if name.startswith("W"))
    h = torch.tensor(x)
    for l in range(1, L + 1):
        h = torch.nn.functional.linear(h, tensors[f"W{l}"], tensors[f"b{l}"])
        if l < L:
            h = torch.relu(h)
    loss = torch.sum((h - torch.tensor(y)) ** 2)
    loss.backward()
    result = {"prediction": h.detach().numpy(), "loss": loss.item()}
    result.update({"d" + name: t.grad.numpy() for name, t in tensors.items()})
    return result
