"""Checks of every formula in chapter 1, "Everything is a mapping"."""
import numpy as np
import pytest
import torch
from formulas import covers

from dlopt.maps import (affine_forward, relu_forward, sigmoid_forward,
                        tanh_forward)
from dlopt.mlp import init_mlp, mlp_forward, mlp_loss_and_grads

F = torch.nn.functional
SHAPES = [(1, 1, 1), (4, 3, 2), (7, 5, 9)]


def t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


@covers("eq-affine")
@pytest.mark.parametrize("N,D,M", SHAPES)
def test_affine_map_of_one_example(N, D, M):
    rng = np.random.default_rng(N * 100 + D * 10 + M)
    X, W, b = (rng.normal(size=(N, D)), rng.normal(size=(M, D)),
               rng.normal(size=M))
    Z, _ = affine_forward(X, W, b)
    for n in range(N):
        # z = W x + b, computed one example at a time by torch.
        ref = torch.mv(t(W), t(X[n])) + t(b)
        np.testing.assert_allclose(Z[n], ref.numpy(), rtol=1e-12)


@covers("eq-affine-batch")
@pytest.mark.parametrize("N,D,M", SHAPES)
def test_affine_map_of_a_batch_matches_torch_linear(N, D, M):
    rng = np.random.default_rng(1)
    X, W, b = (rng.normal(size=(N, D)), rng.normal(size=(M, D)),
               rng.normal(size=M))
    Z, _ = affine_forward(X, W, b)
    np.testing.assert_allclose(Z, F.linear(t(X), t(W), t(b)).numpy(),
                               rtol=1e-12)


@covers("eq-activations")
def test_activations_match_torch():
    z = np.linspace(-30, 30, 241)
    np.testing.assert_allclose(sigmoid_forward(z)[0],
                               torch.sigmoid(t(z)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(tanh_forward(z)[0],
                               torch.tanh(t(z)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(relu_forward(z)[0],
                               torch.relu(t(z)).numpy(), rtol=0)
    # The formulas as printed, where they are numerically safe.
    zs = np.linspace(-5, 5, 21)
    np.testing.assert_allclose(sigmoid_forward(zs)[0],
                               1 / (1 + np.exp(-zs)), rtol=1e-12)
    np.testing.assert_allclose(
        tanh_forward(zs)[0],
        (np.exp(zs) - np.exp(-zs)) / (np.exp(zs) + np.exp(-zs)), rtol=1e-12)
    np.testing.assert_array_equal(relu_forward(zs)[0], np.maximum(0, zs))


@covers("eq-composition")
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_mlp_is_the_composition_of_its_layers(activation):
    sizes = [3, 5, 4, 2]
    params = init_mlp(sizes, activation=activation, init="xavier", seed=0)
    X = np.random.default_rng(0).normal(size=(6, 3))
    out, _ = mlp_forward(params, X, activation=activation)
    layers = [torch.nn.Linear(a, b).double() for a, b in
              zip(sizes[:-1], sizes[1:])]
    with torch.no_grad():
        for i, layer in enumerate(layers, start=1):
            layer.weight.copy_(t(params[f"W{i}"]))
            layer.bias.copy_(t(params[f"b{i}"]))
        phi = {"tanh": torch.tanh, "relu": torch.relu,
               "sigmoid": torch.sigmoid}[activation]
        a = t(X)
        for layer in layers[:-1]:
            a = phi(layer(a))
        ref = layers[-1](a)      # the output layer is affine (logits)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-10, atol=1e-12)


@covers("eq-affine-collapse")
def test_two_affine_maps_collapse_into_one():
    rng = np.random.default_rng(3)
    x = rng.normal(size=4)
    W1, b1 = rng.normal(size=(6, 4)), rng.normal(size=6)
    W2, b2 = rng.normal(size=(3, 6)), rng.normal(size=3)
    lhs = W2 @ (W1 @ x + b1) + b2
    rhs = (W2 @ W1) @ x + (W2 @ b1 + b2)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    # ...and a nonlinearity in between breaks the collapse.
    assert not np.allclose(W2 @ np.tanh(W1 @ x + b1) + b2, rhs)


@covers("eq-empirical-risk")
def test_loss_is_the_mean_of_per_example_losses():
    rng = np.random.default_rng(4)
    params = init_mlp([4, 8, 3], activation="relu", init="he", seed=4)
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    loss, _ = mlp_loss_and_grads(params, X, y, activation="relu",
                                 loss="softmax_ce")
    scores, _ = mlp_forward(params, X, activation="relu")
    per_example = F.cross_entropy(t(scores), torch.from_numpy(y),
                                  reduction="none")
    assert loss == pytest.approx(per_example.mean().item(), rel=1e-12)


@covers("eq-gd-step")
def test_gradient_descent_step_matches_torch_sgd():
    rng = np.random.default_rng(5)
    params = init_mlp([2, 2, 3], activation="tanh", init="xavier", seed=5)
    X, y = rng.normal(size=(12, 2)), rng.integers(0, 3, size=12)
    alpha = 0.5
    tparams = {k: t(v).requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.SGD(tparams.values(), lr=alpha)
    for _ in range(5):
        _, grads = mlp_loss_and_grads(params, X, y, activation="tanh",
                                      loss="softmax_ce")
        params = {k: params[k] - alpha * grads[k] for k in params}
        opt.zero_grad()
        h = torch.tanh(F.linear(t(X), tparams["W1"], tparams["b1"]))
        logits = F.linear(h, tparams["W2"], tparams["b2"])
        F.cross_entropy(logits, torch.from_numpy(y)).backward()
        opt.step()
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


# ------------------------------------------- the page's own data

@pytest.fixture(scope="module")
def page():
    from chapter import run_page
    return run_page("ch01_mapping")


def test_glued_numbers_are_the_runs_numbers(page):
    g, losses = page["_glued"], page["losses"]
    assert g["ch01-n-flowers"] == len(page["X"]) == 150
    assert len(page["species"]) == 3             # "of three species"
    assert g["ch01-steps"] == len(losses)
    assert g["ch01-alpha"] == page["alpha"]
    assert (g["ch01-loss-first"], g["ch01-loss-last"]) == (losses[0],
                                                           losses[-1])
    # accuracy recomputed from the trained parameters, not dlopt.accuracy
    scores, _ = mlp_forward(page["params"], page["X"], activation="tanh")
    assert g["ch01-accuracy"] == pytest.approx(
        np.mean(scores.argmax(axis=1) == page["y"]))


def test_loss_falls_steadily_from_about_1_1_to_below_0_1(page):
    losses = np.asarray(page["losses"])
    assert np.all(np.diff(losses) < 0)           # "fell steadily"
    assert round(losses[0], 1) == 1.1            # alt text
    assert losses[-1] < 0.1
    # the first loss is that of the initial parameters
    p0 = init_mlp([2, 2, 3], activation="tanh", init="xavier", seed=1)
    first, _ = mlp_loss_and_grads(p0, page["X"], page["y"],
                                  activation="tanh", loss="softmax_ce")
    assert losses[0] == pytest.approx(first, rel=1e-12)


def test_hidden_plane_is_the_square_and_lines_separate_the_species(page):
    params, X, y = page["params"], page["X"], page["y"]
    H = page["hidden"](X)
    assert np.all(np.abs(H) < 1)                 # squashed into (-1, 1)^2
    # the output layer is affine in the hidden plane: straight boundaries
    pred = (H @ params["W2"].T + params["b2"]).argmax(axis=1)
    wrong = pred != y
    assert 0 < wrong.sum() <= 10                 # "up to a few flowers"
    setosa = list(page["species"]).index("setosa")
    assert not np.any(wrong & (y == setosa))     # only the overlap
    assert not np.any(pred[wrong] == setosa)
