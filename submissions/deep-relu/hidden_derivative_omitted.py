# mistake: hidden_derivative_omitted (in scratch_gradients) — the error sent back through W without ReLU'(z)
import numpy as np
import torch


def scratch_gradients(x, y, params):
    L = sum(1 for name in params if name.startswith("W"))
    activations, pre = [x], []
    for l in range(1, L + 1):
        z = activations[-1] @ params[f"W{l}"].T + params[f"b{l}"]
        pre.append(z)
        activations.append(np.maximum(z, 0.0) if l < L else z)
    prediction = activations[-1]
    loss = np.sum((prediction - y) ** 2)

    grads = {}
    delta = 2.0 * (prediction - y)
    for l in range(L, 0, -1):
        grads[f"dW{l}"] = delta.T @ activations[l - 1]
        grads[f"db{l}"] = delta.sum(axis=0)
        if l > 1:
            delta = delta @ params[f"W{l}"]
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
