# mistake: dropout_not_in_backward (in train_with_dropout) — the backward pass ignores dropout: dW2 from h before dropout, dL/dh without the mask
import numpy as np
import torch


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward_backward(x, y, W1, W2, mask=None, p=0.0):
    z1 = x @ W1.T
    h = np.maximum(z1, 0)
    h_drop = h if mask is None else h * mask / (1 - p)
    probs = softmax(h_drop @ W2.T)
    loss = -np.sum(y * np.log(probs))
    dz2 = probs - y
    dW2 = dz2.T @ h
    dh = dz2 @ W2
    dz1 = dh * (z1 > 0)
    dW1 = dz1.T @ x
    return probs, loss, dW1, dW2


def scratch_gradients(x, y, params):
    probs, loss, dW1, dW2 = forward_backward(x, y, params["W1"], params["W2"])
    return {"probs": probs, "loss": loss, "dW1": dW1, "dW2": dW2}


def torch_gradients(x, y, params):
    W1 = torch.tensor(params["W1"], requires_grad=True)
    W2 = torch.tensor(params["W2"], requires_grad=True)
    logits = torch.relu(torch.tensor(x) @ W1.T) @ W2.T
    log_probs = torch.log_softmax(logits, dim=1)
    loss = -(torch.tensor(y) * log_probs).sum()
    loss.backward()
    return {"probs": log_probs.exp().detach(), "loss": loss.detach(), "dW1": W1.grad, "dW2": W2.grad}


def train_with_dropout(x, y, params, masks, p, lr):
    W1, W2 = params["W1"].copy(), params["W2"].copy()
    for mask in masks:
        _, _, dW1, dW2 = forward_backward(x, y, W1, W2, mask, p)
        W1 -= lr * dW1
        W2 -= lr * dW2
    return {"W1": W1, "W2": W2}
