"""Chapter 8, "Regularization": the numbers the prose glues and the
claims the prose, alt texts and captions make about the runs, checked on
the page's own data (the whole page runs, about 40 s)."""
import numpy as np
import pytest
import torch

from chapter import run_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page():
    return run_page("ch08_regularization")


def test_augmentation_lowers_the_validation_loss(page):
    g = page["_glued"]
    before = page["aug_runs"]["200 images"][1].val_loss[-1]
    after = page["aug_runs"]["200 images × 9 shifts"][1].val_loss[-1]
    assert (g["ch08-aug-before"], g["ch08-aug-after"]) == (before, after)
    assert after < before and g["ch08-aug-drop"] == pytest.approx(
        1 - after / before)


def test_l2_shrinks_the_weights_as_lambda_grows(page):
    norms = [np.linalg.norm(p["W1"]) for p, _ in page["l2_runs"].values()]
    assert all(a > b for a, b in zip(norms, norms[1:]))


def test_data_sizes(page):
    g, d = page["_glued"], page["d"]
    assert g["ch08-n-digits"] == sum(len(d[f"y_{k}"]) for k in
                                     ("train", "val", "test")) == 1797
    assert g["ch08-n-train"] == len(page["X"]) == page["N"] == 200
    assert g["ch08-n-val"] == len(page["X_val"]) == 360
    assert len(np.unique(d["y_train"])) == 10


def test_underfitting_and_overfitting_by_width(page):
    runs = page["runs"]
    narrow = runs[2][1]
    # width 2: both losses stay high, together
    assert min(narrow.loss) > 0.5 and min(narrow.val_loss) > 0.5
    assert narrow.val_loss[-1] < 1.5 * narrow.loss[-1]
    for H in (32, 128):
        h = runs[H][1]
        assert h.loss[-1] < 0.01                     # training loss -> 0
        k = int(np.argmin(h.val_loss))
        assert abs(h.val_loss[k] - 0.2) < 0.05       # bottoms out near 0.2
        assert k < len(h.val_loss) - 50              # ... and then
        assert h.val_loss[-1] > h.val_loss[k] * 1.05  # creeps up
    # right panel: training loss falls towards 0 with the width, the
    # validation loss levels off at about 0.25 from width 32 on
    train = [runs[H][1].loss[-1] for H in page["widths"]]
    val = [runs[H][1].val_loss[-1] for H in page["widths"]]
    assert all(a > b for a, b in zip(train, train[1:]))
    assert train[-1] < 1e-3
    assert all(abs(v - 0.25) < 0.01 for v in val[2:])
    assert all(v > 50 * tr for v, tr in zip(val[2:], train[2:]))
    assert page["p0"]["W1"].shape == (128, 64)        # "H = 128"


def test_penalty_summed_per_example_collapses_the_weights(page):
    g, N = page["_glued"], page["N"]
    for key, name in (("right", "lambda/(2N) ||theta||^2"),
                      ("wrong", "article's per-example sum")):
        p, h = page["mistake"][name]
        assert g[f"ch08-mistake-norm-{key}"] == pytest.approx(
            torch.linalg.norm(torch.from_numpy(p["W1"])).item())
        assert g[f"ch08-mistake-acc-{key}"] == h.metrics["acc"][-1]
    assert g["ch08-lam-mild"] == 1.0
    assert g["ch08-mistake-norm-wrong"] < 0.1 * g["ch08-mistake-norm-right"]
    assert g["ch08-mistake-acc-wrong"] == pytest.approx(0.1, abs=0.02)
    assert g["ch08-mistake-acc-right"] > 0.9
    # the "wrong" penalty is N times the right one, by value
    from dlopt.regularization import l2_penalty
    p0 = page["p0"]
    r = l2_penalty(p0, lam=1.0, n=N)[0]
    w = l2_penalty(p0, lam=1.0 * N, n=N)[0]
    assert w == pytest.approx(N * r)
    ref = sum(float((torch.from_numpy(v) ** 2).sum()) for k, v in
              p0.items() if k.startswith("W")) / (2 * N)
    assert r == pytest.approx(ref)


def test_l2_curves(page):
    g, runs = page["_glued"], page["l2_runs"]
    ce = {lam: np.asarray(h.metrics["ce"]) for lam, (_, h) in runs.items()}
    # lambda = 0 and 0.3 reach the lowest loss, about 0.22
    lows = {lam: c.min() for lam, c in ce.items()}
    assert set(sorted(lows, key=lows.get)[:2]) == {0.0, 0.3}
    assert all(abs(lows[lam] - 0.22) < 0.01 for lam in (0.0, 0.3))
    # larger lambdas level off higher, at about 0.25, 0.34 and 0.7
    for lam, level in ((1.0, 0.25), (3.0, 0.34), (10.0, 0.7)):
        assert abs(ce[lam][-1] - level) < 0.02 * max(1, level / 0.25)
        assert np.ptp(ce[lam][-20:]) < 0.02           # levelled off
    # "curbs the late rise": measured and glued
    for key, lam in (("small", 0.3), ("none", 0.0)):
        assert g[f"ch08-rise-{key}"] == pytest.approx(
            ce[lam][-1] / ce[lam].min() - 1)
    assert g["ch08-l2-small"] == 0.3
    assert 0 < g["ch08-rise-small"] < 0.5 * g["ch08-rise-none"]
    # accuracy hardly changes for lambda up to 3 while the loss grows
    acc = {lam: h.metrics["acc"][-1] for lam, (_, h) in runs.items()}
    for lam in (1.0, 3.0):
        assert abs(acc[lam] - acc[0.0]) < 0.02 and ce[lam][-1] > ce[0.0][-1]


def test_adam_l2_against_adamw(page):
    g, after = page["_glued"], page["after"]
    assert g["ch08-T"] == 200
    w = after["AdamW"]
    assert np.ptp(w) < 1e-3                        # the same factor
    assert g["ch08-adamw-w"] == pytest.approx(w.mean())
    assert g["ch08-adamw-factor"] == pytest.approx(0.999 ** 200)
    assert abs(g["ch08-adamw-w"] - g["ch08-adamw-factor"]) < 0.03  # close
    assert g["ch08-adam-small"] == after["Adam + L2"][0] < 0.05
    assert g["ch08-adam-large"] == after["Adam + L2"][-1]
    assert abs(g["ch08-adam-large"] - 1) < 0.05    # hardly regularised
    # torch.optim.Adam / AdamW on the same gradients give the same weights
    for name, cls in (("Adam + L2", torch.optim.Adam),
                      ("AdamW", torch.optim.AdamW)):
        q = torch.ones(3, dtype=torch.float64, requires_grad=True)
        opt = cls([q], lr=1e-2, weight_decay=0.1)
        for t in range(1, 201):
            q.grad = torch.from_numpy(page["scales"] * (-1.0) ** t)
            opt.step()
        np.testing.assert_allclose(q.detach().numpy(), after[name],
                                   rtol=1e-9)


def test_l1_zeros_weights_and_the_border(page):
    g, sp, tiny = page["_glued"], page["sparsity"], page["tiny"]
    for name, W in sp.items():
        assert g[f"ch08-zero-{name}"] == np.mean(np.abs(W) < tiny)
    assert g["ch08-zero-L1"] > 0.3                  # "many pixels"
    assert g["ch08-zero-none"] < 0.02 and g["ch08-zero-L2"] < 0.02
    # the always-empty pixels get (almost) no weight under L1
    empty = np.all(page["Xa"] == 0, axis=0)
    assert empty.sum() >= 2
    assert np.all(np.abs(sp["L1"][:, empty]) < tiny)
    assert not np.all(np.abs(sp["none"][:, empty]) < tiny)


def test_dropout_raises_training_loss_and_lowers_validation_loss(page):
    g, runs = page["_glued"], page["drop_runs"]
    for key, q in (("nodrop", 0.0), ("drop", 0.5)):
        assert g[f"ch08-{key}-train"] == runs[q][1].loss[-1]
        assert g[f"ch08-{key}-val"] == runs[q][1].val_loss[-1]
    assert g["ch08-drop-train"] > g["ch08-nodrop-train"]
    assert g["ch08-drop-val"] < g["ch08-nodrop-val"]


def test_early_stopping(page):
    from dlopt.regularization import early_stopping_rule
    h, P = page["h_es"], page["patience"]
    assert P == 10
    stop = len(h.val_loss) - 1
    # "training stops ten epochs later", at the best epoch's loss
    assert stop - h.best_epoch == P
    assert h.val_loss[h.best_epoch] == min(h.val_loss)
    assert stop < 299                               # stopped early
    assert early_stopping_rule(h.val_loss, patience=P) == (stop,
                                                           h.best_epoch)
    # the prose's example: P = 3, best epoch 10 -> stops after epoch 13
    losses = list(np.linspace(2, 1, 11)) + [1.5, 1.2, 1.1, 1.0, 0.9]
    assert early_stopping_rule(losses, patience=3) == (13, 10)


def test_augmentation_shifts(page):
    assert len(page["shifts"]) == 9                 # each image + 8 more
    assert page["X_aug"].shape == (9 * 200, 64)


def test_input_normalisation(page):
    g, final, rates = page["_glued"], page["final"], page["rates"]
    assert g["ch08-pixel-max"] == 16.0 and page["Xa"].min() == 0
    assert g["ch08-norm-epochs"] == 10
    cond = page["cond"]
    assert g["ch08-cond-raw"] == cond["raw 0..16"]
    assert g["ch08-cond-std"] == cond["standardised"]
    # same condition number for raw and scaled pixels; standardising
    # lowers it a lot
    assert cond["raw 0..16"] == pytest.approx(cond["scaled to [0, 1]"],
                                              rel=1e-6)
    assert cond["standardised"] < 1e-3 * cond["raw 0..16"]
    # alt text: raw lowest ~0.13 near 0.03, rises steeply above; scaled
    # needs rates near 1 or more; standardised lowest, about 0.02
    raw = np.asarray(final["raw 0..16"])
    k = int(np.nanargmin(raw))
    assert rates[k] == 0.03 and abs(raw[k] - 0.13) < 0.01
    assert np.all(np.diff(raw[k + 1:]) > 0) and raw[-1] > 10 * raw[k]
    scaled = np.asarray(final["scaled to [0, 1]"])
    assert rates[int(np.nanargmin(scaled))] >= 1.0
    std = np.asarray(final["standardised"])
    assert abs(np.nanmin(std) - 0.02) < 0.005
    assert np.nanmin(std) < min(np.nanmin(raw), np.nanmin(scaled))


def test_cross_validation_picks_a_moderate_lambda(page):
    g, cv, lams = page["_glued"], page["cv"], page["cv_lams"]
    assert cv.shape == (5, 5)                       # 5 folds
    means = cv.mean(1)
    best = lams[int(np.argmin(means))]
    assert g["ch08-best-lam"] == best == page["best_lam"]
    assert 0 < best < 10                            # moderate
    assert means[-1] == means.max()                 # rises for 10
