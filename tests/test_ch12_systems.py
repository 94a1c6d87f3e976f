"""Chapter 12, "The articles' systems, done right": every formula, and
dlopt.prune (magnitude pruning) against torch.nn.utils.prune."""
import numpy as np
import pytest
import torch
import torch.nn.utils.prune  # noqa: F401 (not imported by torch itself)
from chapter import code_cells
from formulas import covers

from dlopt.gradcheck import numerical_gradient
from dlopt.prune import magnitude_mask, magnitude_prune, sparsity

F = torch.nn.functional


@covers("eq-sys-ce-two-grads")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_entropy_gradients_wrt_probabilities_and_logits(seed):
    rng = np.random.default_rng(seed)
    K = 10
    z = torch.tensor(rng.normal(size=K), dtype=torch.float64,
                     requires_grad=True)
    k = int(rng.integers(K))
    y = F.one_hot(torch.tensor(k), K).double()
    p = torch.softmax(z, 0)
    p.retain_grad()
    loss = -(y * torch.log(p)).sum()
    loss.backward()
    # w.r.t. the probabilities: -y / y_hat (not y_hat - y)
    np.testing.assert_allclose(p.grad.numpy(), (-y / p).detach().numpy(),
                               rtol=1e-12)
    # w.r.t. the logits: y_hat - y
    np.testing.assert_allclose(z.grad.numpy(), (p - y).detach().numpy(),
                               rtol=1e-10, atol=1e-14)
    assert not np.allclose(p.grad.numpy(), (p - y).detach().numpy())


def _page_function(name):
    """The chapter's own code cell that defines ``name``, executed alone."""
    cells = [c for c in code_cells("ch12_systems")
             if c.lstrip().startswith(f"def {name}(")]
    assert len(cells) == 1, f"one cell of ch12 must define {name}"
    ns = {"np": np}
    exec(compile(cells[0], f"ch12_systems.md[{name}]", "exec"), ns)
    return ns[name]


@covers("eq-sys-ce-two-grads", "eq-prac-softmax-model", "eq-prac-ce",
        "eq-prac-ce-grad")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pages_numpy_softmax_regression_matches_torch(seed):
    """Article 000's system as the page writes it out: forward map, mean
    cross-entropy and backpropagation, against torch.autograd in
    float64."""
    softmax_regression = _page_function("softmax_regression")
    rng = np.random.default_rng(seed)
    n, d, k = 32, 784, 10
    X = rng.uniform(0, 1, size=(n, d))
    yb = rng.integers(k, size=n)
    params = {"W1": rng.normal(scale=2.0, size=(k, d)),
              "b1": rng.normal(size=k)}
    loss, grads = softmax_regression(params, X, yb)
    W = torch.tensor(params["W1"], requires_grad=True)
    b = torch.tensor(params["b1"], requires_grad=True)
    ref = F.cross_entropy(torch.from_numpy(X) @ W.T + b,
                          torch.from_numpy(yb))
    ref.backward()
    assert np.isfinite(loss) and ref.item() > 1
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(grads["W1"], W.grad.numpy(), rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(grads["b1"], b.grad.numpy(), rtol=1e-10,
                               atol=1e-14)
    assert grads["W1"].shape == (k, d) and grads["b1"].shape == (k,)
    # it leaves its inputs alone
    np.testing.assert_array_equal(X, np.random.default_rng(seed)
                                  .uniform(0, 1, size=(n, d)))


@covers("eq-sys-normal-equations")
@pytest.mark.parametrize("seed", [0, 4, 7])
def test_normal_equations_solve_least_squares(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=100)
    t = 2 * x + 1 + rng.normal(size=100)
    Xt = np.c_[np.ones_like(x), x]
    theta = np.linalg.solve(Xt.T @ Xt, Xt.T @ t)
    ref = torch.linalg.lstsq(torch.from_numpy(Xt),
                             torch.from_numpy(t)[:, None]).solution
    np.testing.assert_allclose(theta, ref.numpy().ravel(), rtol=1e-10)
    # the gradient of J (eq-ch04-grad-matrix) vanishes there...
    def J(th):
        r = Xt @ th - t
        return r @ r / (2 * len(t))
    np.testing.assert_allclose(numerical_gradient(J, theta.copy()), 0,
                               atol=1e-8)
    # ... and it is a minimum: J is larger a little away in any direction
    for d in np.eye(2):
        assert J(theta + 1e-3 * d) > J(theta) < J(theta - 1e-3 * d)


@covers("eq-sys-prune")
@pytest.mark.parametrize("s", [0.0, 0.3, 0.5, 0.9, 0.99, 1.0])
def test_magnitude_pruning_matches_torch_l1_unstructured(s):
    rng = np.random.default_rng(int(100 * s))
    W = rng.normal(size=(16, 30))
    layer = torch.nn.Linear(30, 16, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W))
    torch.nn.utils.prune.l1_unstructured(layer, "weight", amount=s)
    ref_mask = layer.weight_mask.numpy().astype(bool)
    mask = magnitude_mask(W, s)
    np.testing.assert_array_equal(mask, ref_mask)
    pruned, masks = magnitude_prune({"W1": W, "b1": np.ones(16)}, s)
    np.testing.assert_array_equal(pruned["W1"], layer.weight.detach())
    np.testing.assert_array_equal(pruned["b1"], 1.0)     # biases stay
    assert sparsity(pruned) == pytest.approx(round(s * W.size) / W.size)
    # the eq's form: kept entries are exactly those above the threshold
    k = round(s * W.size)
    if 0 < k < W.size:
        tau = np.sort(np.abs(W).ravel())[k - 1]
        np.testing.assert_array_equal(masks["W1"], np.abs(W) > tau)


def test_pruning_leaves_the_input_alone_and_checks_arguments():
    W = np.arange(1.0, 7.0).reshape(2, 3)
    p = {"W1": W.copy()}
    out, _ = magnitude_prune(p, 0.5)
    np.testing.assert_array_equal(p["W1"], W)
    np.testing.assert_array_equal(out["W1"], [[0, 0, 0], [4, 5, 6]])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        magnitude_mask(W, 1.5)
    with pytest.raises(KeyError, match="W9"):
        magnitude_prune(p, 0.5, keys=["W9"])
    ties = np.ones(4)
    assert magnitude_mask(ties, 0.5).tolist() == [False, False, True, True]


@covers("eq-sys-ensemble")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ensemble_average_of_probabilities(seed):
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=3, size=(4, 50, 10))            # 4 members
    labels = rng.integers(10, size=50)
    P_bar = np.mean([np.exp(z) / np.exp(z).sum(1, keepdims=True)
                     for z in Z], axis=0)
    ref = torch.softmax(torch.from_numpy(Z), dim=2).mean(0).numpy()
    np.testing.assert_allclose(P_bar, ref, rtol=1e-12)
    np.testing.assert_allclose(P_bar.sum(1), 1)

    def ce(P):
        return -np.mean(np.log(P[np.arange(50), labels]))
    members = [ce(torch.softmax(torch.from_numpy(z), 1).numpy())
               for z in Z]
    # convexity of -log: never worse than the members' mean ...
    assert ce(P_bar) <= np.mean(members) + 1e-12
    # ... and equal when all members agree
    same = np.repeat(Z[:1], 4, axis=0)
    P_same = torch.softmax(torch.from_numpy(same), 2).mean(0).numpy()
    assert ce(P_same) == pytest.approx(members[0], rel=1e-12)


def _page_python_block(marker):
    """The chapter's one ```python block (shown, not executed on the page)
    that contains ``marker``."""
    import re

    from chapter import BOOK
    text = (BOOK / "ch12_systems.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"^```python\n(.*?)^```", text,
                                    re.S | re.M) if marker in b]
    assert len(blocks) == 1, f"one python block of ch12 must hold {marker}"
    return blocks[0]


def test_the_pages_tensorboard_logging_code_writes_what_it_says(
        tmp_path, monkeypatch):
    """The TensorBoard block, run as printed, with its '...' (one epoch of
    training) filled in: the event file holds both curves, one value per
    epoch, and per epoch a histogram of every parameter and of its
    gradient, with the right counts, sums and ranges."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator)
    code = _page_python_block("SummaryWriter")
    placeholder = [l for l in code.splitlines() if l.strip().startswith("...")]
    assert len(placeholder) == 1
    code = code.replace(placeholder[0],
                        "    epoch_loss, val_accuracy = one_epoch()")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(256, 784, generator=gen)
    y = torch.randint(10, (256,), generator=gen)
    logged = []

    def one_epoch():
        total = 0.0
        for idx in torch.randperm(256, generator=gen).split(64):
            opt.zero_grad()
            loss = F.cross_entropy(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        with torch.no_grad():
            acc = (net(X).argmax(1) == y).float().mean().item()
        logged.append({"loss": total / 256, "acc": acc,
                       **{f"weights/{n}": p.detach().clone()
                          for n, p in net.named_parameters()},
                       **{f"gradients/{n}": p.grad.clone()
                          for n, p in net.named_parameters()}})
        return total / 256, acc

    monkeypatch.chdir(tmp_path)
    EPOCHS = 3
    exec(compile(code, "ch12_systems.md[tensorboard]", "exec"),
         {"EPOCHS": EPOCHS, "net": net, "one_epoch": one_epoch})
    runs = list((tmp_path / "runs" / "mlp-adam").glob("events.out.*"))
    assert len(runs) == 1
    events = EventAccumulator(str(runs[0].parent),
                              size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    for tag, key in (("loss/train", "loss"), ("accuracy/validation", "acc")):
        got = events.Scalars(tag)
        assert [e.step for e in got] == list(range(EPOCHS))
        np.testing.assert_allclose([e.value for e in got],
                                   [r[key] for r in logged], rtol=1e-6)
    names = [n for n, _ in net.named_parameters()]
    expected = {f"{kind}/{n}" for kind in ("weights", "gradients")
                for n in names}
    assert set(events.Tags()["histograms"]) == expected
    for tag in expected:
        hists = events.Histograms(tag)
        assert [h.step for h in hists] == list(range(EPOCHS))
        for h, rec in zip(hists, logged):
            v = rec[tag].double()
            hv = h.histogram_value
            assert hv.num == v.numel()
            assert hv.sum == pytest.approx(v.sum().item(), rel=1e-5,
                                           abs=1e-6)
            assert (hv.min, hv.max) == pytest.approx(
                (v.min().item(), v.max().item()), rel=1e-6)
    # the weights moved between epochs: the histograms are not one copy
    first, last = (events.Histograms("weights/0.weight")[i].histogram_value
                   for i in (0, -1))
    assert first.sum != last.sum


def test_the_tables_initial_weights_row():
    """What the side-by-side table says about initial weights: nn.Linear's
    default draws weights and biases uniformly within 1/sqrt(fan-in);
    init_mlp's default for ReLU is He normal, N(0, 2/fan-in), zero
    biases."""
    from dlopt.mlp import init_mlp
    torch.manual_seed(0)
    layer = torch.nn.Linear(784, 512)
    bound = 1 / np.sqrt(784)
    for t in (layer.weight, layer.bias):
        v = t.detach().numpy()
        assert np.abs(v).max() <= bound
        assert np.abs(v).max() > 0.99 * bound          # fills the range
        # uniform: variance bound^2 / 3
        assert v.var() == pytest.approx(bound ** 2 / 3, rel=0.1)
    p = init_mlp([784, 512, 10], seed=0)
    assert p["W1"].std() == pytest.approx(np.sqrt(2 / 784), rel=0.01)
    assert p["W2"].std() == pytest.approx(np.sqrt(2 / 512), rel=0.05)
    assert not p["b1"].any() and not p["b2"].any()
    assert np.abs(p["W1"]).max() > 3 * np.sqrt(2 / 784)   # normal tails
