"""dlopt.regularization and every formula of chapter 8, Regularization."""
import numpy as np
import pytest
import torch
from formulas import covers
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dlopt import optim
from dlopt.data import standardize
from dlopt.gradcheck import check_gradients
from dlopt.mlp import init_mlp, mlp_loss_and_grads
from dlopt.regularization import (dropout_backward, dropout_forward,
                                  early_stopping_rule, l1_penalty,
                                  l2_penalty, penalized)
from dlopt.train import fit


def t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def params(seed=0):
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=4),
            "W2": rng.normal(size=(2, 4)), "b2": rng.normal(size=2)}


@covers("eq-reg-l2", "eq-reg-l2-grad")
@pytest.mark.parametrize("lam,n", [(0.0, 1), (0.5, 7), (3.0, 200)])
def test_l2_penalty_value_and_gradient_match_torch(lam, n):
    p = params(n)
    value, grads = l2_penalty(p, lam, n)
    tw = {k: t(v, True) for k, v in p.items()}
    ref = lam / (2 * n) * sum((tw[k] ** 2).sum() for k in ("W1", "W2"))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-12, abs=1e-15)
    for k in p:
        want = (tw[k].grad.numpy() if lam and tw[k].grad is not None
                else np.zeros_like(p[k]))
        np.testing.assert_allclose(grads[k], want, rtol=1e-12, atol=0)
    # Biases are not penalised.
    assert not grads["b1"].any() and not grads["b2"].any()


@covers("eq-reg-l2")
def test_l2_penalty_is_not_summed_once_per_example():
    # Mistake 4: lambda/(2N) sum_{i=1..N} ||theta||^2 is N times larger.
    p, lam, n = params(1), 0.3, 50
    value, _ = l2_penalty(p, lam, n)
    sq = sum(np.sum(p[k] ** 2) for k in ("W1", "W2"))
    wrong = lam / (2 * n) * sum(sq for _ in range(n))
    assert value == pytest.approx(lam / (2 * n) * sq, rel=1e-12)
    assert wrong == pytest.approx(n * value, rel=1e-12)


@covers("eq-reg-l1", "eq-reg-l1-grad")
def test_l1_penalty_value_and_subgradient_match_torch():
    p, lam, n = params(2), 0.7, 9
    p["W1"][0, 0] = 0.0       # torch.abs'(0) = 0, like sign(0)
    value, grads = l1_penalty(p, lam, n)
    tw = {k: t(v, True) for k, v in p.items()}
    ref = lam / n * sum(tw[k].abs().sum() for k in ("W1", "W2"))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-12)
    for k in ("W1", "W2"):
        np.testing.assert_allclose(grads[k], tw[k].grad.numpy(), rtol=1e-12)
    assert grads["W1"][0, 0] == 0.0


@covers("eq-reg-objective", "eq-reg-l2-grad")
def test_penalized_mlp_passes_a_gradient_check():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 2, size=6)
    p = init_mlp([3, 4, 2], activation="tanh", seed=3)
    for pen in (l2_penalty, l1_penalty):
        f = penalized(lambda q, a, b: mlp_loss_and_grads(
            q, a, b, activation="tanh"), pen, lam=0.8, n=6)
        _, g = f(p, X, y)
        check_gradients(lambda q: f(q, X, y)[0], p, g).assert_ok()


@covers("eq-reg-sgd-decay")
def test_l2_on_sgd_is_weight_decay_and_matches_torch():
    rng = np.random.default_rng(4)
    theta, lam, n, lr = rng.normal(size=5), 2.0, 10, 0.1
    g = rng.normal(size=5)
    # gradient of L + R, one SGD step
    l2 = theta - lr * (g + lam / n * theta)
    decay = (1 - lr * lam / n) * theta - lr * g
    np.testing.assert_allclose(l2, decay, rtol=1e-12)
    opt = optim.sgd(lr, weight_decay=lam / n)
    p = {"w": theta.copy()}
    u, _ = opt.update({"w": g}, opt.init(p), p)
    np.testing.assert_allclose(optim.apply_updates(p, u)["w"], decay,
                               rtol=1e-12)
    tp = t(theta, True)
    topt = torch.optim.SGD([tp], lr=lr, weight_decay=lam / n)
    tp.grad = t(g)
    topt.step()
    np.testing.assert_allclose(tp.detach().numpy(), decay, rtol=1e-12)


def _run(opt, theta, grads):
    p = {"w": theta.copy()}
    s = opt.init(p)
    for g in grads:
        u, s = opt.update({"w": g}, s, p)
        p = optim.apply_updates(p, u)
    return p["w"]


def _run_torch(cls, theta, grads, **kw):
    tp = t(theta, True)
    o = cls([tp], **kw)
    for g in grads:
        tp.grad = t(g)
        o.step()
    return tp.detach().numpy()


@covers("eq-reg-adam-l2", "eq-reg-adamw")
def test_adam_l2_differs_from_adamw_and_both_match_torch():
    rng = np.random.default_rng(5)
    # Coordinates with very different gradient scales.
    theta = rng.normal(size=6)
    grads = [rng.normal(size=6) * np.array([1e-3, 1e-3, 1, 1, 1e2, 1e2])
             for _ in range(20)]
    lr, wd = 1e-2, 0.1
    coupled = _run(optim.adam(lr, weight_decay=wd), theta, grads)
    decoupled = _run(optim.adamw(lr, weight_decay=wd), theta, grads)
    np.testing.assert_allclose(
        coupled, _run_torch(torch.optim.Adam, theta, grads, lr=lr,
                            weight_decay=wd), rtol=1e-10)
    np.testing.assert_allclose(
        decoupled, _run_torch(torch.optim.AdamW, theta, grads, lr=lr,
                              weight_decay=wd), rtol=1e-10)
    assert np.max(np.abs(coupled - decoupled)) > 1e-3
    # AdamW's one step by hand: theta - lr*wd*theta - lr*m_hat/(sqrt+eps)
    g = grads[0]
    m_hat, v_hat = g, g * g
    by_hand = theta - lr * wd * theta - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(_run(optim.adamw(lr, weight_decay=wd),
                                    theta, grads[:1]), by_hand, rtol=1e-12)
    # Adam + L2 one step: the decay term goes through the normalisation.
    g2 = g + wd * theta
    by_hand = theta - lr * g2 / (np.sqrt(g2 * g2) + 1e-8)
    np.testing.assert_allclose(_run(optim.adam(lr, weight_decay=wd),
                                    theta, grads[:1]), by_hand, rtol=1e-12)


@covers("eq-reg-shrink-l2", "eq-reg-soft-threshold")
@settings(deadline=None, max_examples=40)
@given(c=st.floats(-3, 3), lam=st.floats(0.01, 2), h=st.floats(0.1, 5))
def test_one_dimensional_minimisers_by_grid_search(c, lam, h):
    grid = np.linspace(-4, 4, 160001)
    l2 = 0.5 * h * (grid - c) ** 2 + 0.5 * lam * grid ** 2
    l1 = 0.5 * (grid - c) ** 2 + lam * np.abs(grid)
    assert grid[np.argmin(l2)] == pytest.approx(h * c / (h + lam),
                                                abs=1e-4)
    soft = np.sign(c) * max(abs(c) - lam, 0.0)
    assert grid[np.argmin(l1)] == pytest.approx(soft, abs=1e-4)


@covers("eq-reg-shrink-l2")
def test_l2_shrinks_each_hessian_direction_by_its_own_factor():
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    h = np.array([0.01, 0.1, 1.0, 10.0, 100.0])
    H, c, lam = Q @ np.diag(h) @ Q.T, rng.normal(size=5), 1.0
    # the formula, direction by direction, in the original coordinates
    star = Q @ (h / (h + lam) * (Q.T @ c))
    th = torch.tensor(star, requires_grad=True)
    Ht, ct = torch.tensor(H), torch.tensor(c)
    d = th - ct
    (0.5 * d @ Ht @ d + 0.5 * lam * th @ th).backward()
    np.testing.assert_allclose(th.grad.numpy(), 0.0, atol=1e-12)
    got = Q.T @ star
    # not one common factor: flat directions shrink, sharp ones do not
    factors = got / (Q.T @ c)
    assert factors[0] < 0.02 and factors[-1] > 0.99


@covers("eq-reg-dropout", "eq-reg-dropout-mean")
def test_inverted_dropout_keeps_the_mean_and_scales_survivors():
    A = np.random.default_rng(6).normal(size=(200, 50)) + 3.0
    p = 0.3
    out, mask = dropout_forward(A, p, rng=np.random.default_rng(0))
    kept = mask > 0
    np.testing.assert_allclose(out[kept], A[kept] / (1 - p), rtol=1e-12)
    assert np.all(out[~kept] == 0)
    assert abs(kept.mean() - (1 - p)) < 0.02
    # E[out] = A: average many independent masks.
    rng = np.random.default_rng(1)
    x = np.full(100000, 2.0)
    assert dropout_forward(x, p, rng=rng)[0].mean() == pytest.approx(
        2.0, rel=0.01)
    # Evaluation is the identity.
    ev, m = dropout_forward(A, p, train=False)
    np.testing.assert_array_equal(ev, A)
    assert np.all(m == 1)


@covers("eq-reg-dropout-backward")
def test_dropout_backward_matches_torch_with_the_same_mask():
    rng = np.random.default_rng(7)
    A, dout, p = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), 0.5
    out, mask = dropout_forward(A, p, rng=rng)
    ta = t(A, True)
    # torch's dropout with our mask: out = A * mask
    (ta * t(mask) * t(dout)).sum().backward()
    np.testing.assert_allclose(dropout_backward(dout, mask),
                               ta.grad.numpy(), rtol=1e-12)
    num = check_gradients(
        lambda q: float(np.sum(q["A"] * mask * dout)), {"A": A.copy()},
        {"A": dropout_backward(dout, mask)})
    num.assert_ok()


def test_torch_dropout_has_the_same_statistics():
    torch.manual_seed(0)
    x = torch.ones(200000, dtype=torch.float64)
    y = torch.nn.functional.dropout(x, p=0.25, training=True)
    kept = y[y > 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.75))
    out, _ = dropout_forward(x.numpy(), 0.25, rng=0)
    assert set(np.unique(out)) == {0.0, 1 / 0.75}


def test_dropout_errors_name_the_argument():
    with pytest.raises(ValueError, match="p must be in"):
        dropout_forward(np.ones(3), 1.0, rng=0)
    with pytest.raises(ValueError, match="rng is required"):
        dropout_forward(np.ones(3), 0.5)
    with pytest.raises(ValueError, match="mask"):
        dropout_backward(np.ones(3), np.ones(4))


@covers("eq-reg-early-stop")
@pytest.mark.parametrize("patience", [1, 2, 3, 5])
def test_early_stopping_rule_agrees_with_train_fit(patience):
    # Val losses: improve for 4 epochs then rise.
    losses = [5, 4, 3, 2, 2.5, 2.6, 2.05, 3, 4, 5, 6, 7]
    stop, best = early_stopping_rule(losses, patience)
    assert best == 3
    assert stop == 3 + patience
    # the same rule inside dlopt.train.fit, driven by a fake loss
    it = iter(losses)
    calls = {"n": 0}

    def lag(params, X, y):
        calls["n"] += 1
        if len(X) == 1:          # the validation call
            return next(it), {}
        return 0.0, {"w": np.zeros(1)}

    _, hist = fit({"w": np.zeros(1)}, lag, (np.zeros((2, 1)), np.zeros(2)),
                  optim.sgd(0.1), epochs=len(losses), batch_size=2,
                  val=(np.zeros((1, 1)), np.zeros(1)),
                  early_stopping=patience, progress=False)
    assert hist.best_epoch == best
    assert len(hist.val_loss) == stop + 1


@covers("eq-reg-early-stop")
def test_early_stopping_min_delta_and_never_fires():
    assert early_stopping_rule([3, 2, 1, 0.5], 2) == (None, 3)
    # improvements smaller than min_delta do not reset the counter
    assert early_stopping_rule([1.0, 0.99, 0.98, 0.97], 2,
                               min_delta=0.05) == (2, 0)
    with pytest.raises(ValueError, match="patience"):
        early_stopping_rule([1.0], 0)


@covers("eq-reg-standardize")
def test_standardize_uses_training_statistics_only():
    rng = np.random.default_rng(8)
    Xtr, Xte = rng.normal(3, 2, size=(50, 4)), rng.normal(0, 1, size=(7, 4))
    a, b = standardize(Xtr, Xte)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    np.testing.assert_allclose(a, (Xtr - mu) / sd, rtol=1e-12)
    np.testing.assert_allclose(b, (Xte - mu) / sd, rtol=1e-12)
    np.testing.assert_allclose(a.mean(0), 0, atol=1e-12)


@settings(deadline=None, max_examples=25)
@given(arrays(np.float64, (3, 4), elements=st.floats(-5, 5)),
       st.floats(0, 10), st.integers(1, 1000))
def test_penalties_are_nonnegative_and_homogeneous(W, lam, n):
    v2, g2 = l2_penalty({"W1": W}, lam, n)
    v1, g1 = l1_penalty({"W1": W}, lam, n)
    assert v2 >= 0 and v1 >= 0
    # Euler: theta . grad R = 2 R (L2) and = R (L1).
    assert np.sum(W * g2["W1"]) == pytest.approx(2 * v2, abs=1e-9)
    assert np.sum(W * g1["W1"]) == pytest.approx(v1, abs=1e-9)


def test_penalty_errors_name_the_argument():
    with pytest.raises(ValueError, match="n \\(number of training"):
        l2_penalty(params(), 0.1, 0)
    with pytest.raises(ValueError, match="lam"):
        l1_penalty(params(), -1.0, 3)
    with pytest.raises(ValueError, match="keys"):
        l2_penalty(params(), 0.1, 3, keys=["W9"])
