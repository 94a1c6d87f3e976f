"""Chapter 9, "Practice": the numbers its prose glues and the claims its
prose, alt texts and captions make about the runs, checked on the data
the page draws (the whole page runs, about 15 s)."""
import numpy as np
import pytest
import torch

from chapter import run_page


@pytest.fixture(scope="module")
def page():
    return run_page("ch09_practice")


def test_the_data_and_its_split(page):
    g, d = page["_glued"], page["d"]
    sizes = {k: len(d[f"y_{k}"]) for k in ("train", "val", "test")}
    assert g["ch09-n-digits"] == sum(sizes.values()) == 1797
    for k, pct in (("train", 60), ("val", 20), ("test", 20)):
        assert g[f"ch09-pct-{k}"] == pytest.approx(100 * sizes[k] / 1797)
        assert round(g[f"ch09-pct-{k}"]) == pct
    assert sizes["test"] == 360                     # the confusion caption
    total = sum(np.bincount(d[f"y_{k}"], minlength=10) for k in sizes)
    assert total.min() > 0.95 * total.max()         # "balanced classes"
    for k in sizes:                                 # a stratified split
        counts = np.bincount(d[f"y_{k}"], minlength=10)
        assert np.all(np.abs(counts - total * sizes[k] / 1797) <= 1.5)
    assert g["ch09-chance"] == pytest.approx(100 / 10)


def test_training_hyperparameters_are_the_ones_used(page):
    g = page["_glued"]
    assert (g["ch09-lr"], g["ch09-momentum"], g["ch09-bs"],
            g["ch09-epochs"]) == (0.1, 0.9, 32, 40)
    for h in (page["softmax_h"], page["mlp_h"]):
        assert len(h.loss) == len(h.val_loss) == g["ch09-epochs"]


def test_loss_and_accuracy_curves(page):
    sm, mlp = page["softmax_h"], page["mlp_h"]
    # the MLP's training loss falls far below the softmax classifier's
    assert mlp.loss[-1] < 0.1 * sm.loss[-1]
    # both validation losses level off near 0.14
    for h in (sm, mlp):
        assert abs(h.val_loss[-1] - 0.14) < 0.02
        assert max(h.val_loss[-10:]) - min(h.val_loss[-10:]) < 0.03
        # rising quickly above 0.9 (by the second epoch)
        assert h.metrics["val_acc"][1] > 0.9
        assert h.metrics["train_acc"][1] > 0.9
        assert abs(h.metrics["val_acc"][-1] - 0.97) < 0.01   # "about"
    assert mlp.metrics["train_acc"][-1] == 1.0      # fits perfectly


def test_test_accuracy_and_confusion_matrix(page):
    g, y_test, pred = page["_glued"], page["y_test"], page["pred"]
    assert g["ch09-test-mlp"] == pytest.approx(
        100 * np.mean(pred == y_test))
    assert round(g["ch09-test-mlp"]) == 97          # the summary's "97 %"
    assert g["ch09-test-mlp"] > 5 * g["ch09-chance"]   # "a wide margin"
    C = page["confusion"]
    # an independent count of the confusion matrix
    ref = np.array([[np.sum((y_test == i) & (pred == j)) for j in range(10)]
                    for i in range(10)])
    np.testing.assert_array_equal(C, ref)
    assert C.sum() == 360
    assert np.all(np.abs(np.diag(C) - 36) <= 4)     # "about 36 per class"
    off = C - np.diag(np.diag(C))
    assert 1 <= off.max() <= 2                      # "1 or 2 errors"
    assert 0 < np.count_nonzero(off) <= 12          # "a few cells"


def test_torch_loop_computes_the_same_numbers(page):
    g = page["_glued"]
    diffs = np.r_[np.abs(np.array(page["torch_loss"]) - page["mlp_h"].loss),
                  np.abs(np.array(page["torch_val"])
                         - page["mlp_h"].val_loss)]
    assert g["ch09-torch-diff"] == diffs.max() < 1e-12
    assert len(page["torch_loss"]) == g["ch09-epochs"]
    np.testing.assert_array_equal(page["torch_pred"], page["pred"])


def test_grid_of_rates_and_batch_sizes(page):
    g, grid, rates, sizes = (page["_glued"], page["grid"], page["rates"],
                             page["sizes"])
    assert g["ch09-grid-epochs"] == 10
    i, j = np.unravel_index(np.nanargmax(grid), grid.shape)
    assert (g["ch09-grid-lr"], g["ch09-grid-bs"], g["ch09-grid-acc"]) == (
        rates[i], sizes[j], grid[i, j])
    assert not np.isnan(grid).any()
    # low for small rates with large batches, broken for the largest rate
    # with small batches, high along a diagonal band
    assert grid[0, -1] < 0.5
    assert grid[-1, 0] < 0.2 and grid[-1, 1] < 0.2
    good = grid >= 0.9
    lowest = [rates[np.flatnonzero(good[:, k])[0]] for k in range(4)]
    highest = [rates[np.flatnonzero(good[:, k])[-1]] for k in range(4)]
    assert lowest == sorted(lowest) and lowest[0] < lowest[-1]
    assert highest == sorted(highest) and highest[0] < highest[-1]
    for k in range(4):                              # a band: contiguous
        rows = np.flatnonzero(good[:, k])
        assert np.all(np.diff(rows) == 1)


def test_distillation_gain(page):
    g = page["_glued"]
    gain = np.array(page["scores"]["distilled"]) - np.array(
        page["scores"]["from labels"])
    assert g["ch09-distill-seeds"] == len(gain) == 5
    assert g["ch09-distill-gain"] == pytest.approx(100 * gain.mean())
    assert 0 < g["ch09-distill-gain"] < 1          # "under one point"
    assert np.all(gain >= 0)                        # "no seed loses"
    assert g["ch09-distill-worst"] == pytest.approx(100 * gain.min())


def test_int8_quantization(page):
    g, mlp_p = page["_glued"], page["mlp_p"]
    n = sum(v.size for v in mlp_p.values())
    assert g["ch09-bytes-float"] == 8 * n          # float64
    # int8 weights, float64 biases and one float64 scale per row
    W = [v for k, v in mlp_p.items() if k.startswith("W")]
    b = [v for k, v in mlp_p.items() if k.startswith("b")]
    expected = sum(w.size + 8 * w.shape[0] for w in W) + \
        sum(8 * v.size for v in b)
    assert g["ch09-bytes-int8"] == expected
    assert g["ch09-size-ratio"] == pytest.approx(expected / (8 * n))
    assert abs(1 / g["ch09-size-ratio"] - 6) < 1    # "about a sixth"
    # accuracy recomputed in torch: symmetric per-row int8 weights
    # (eq-prac-quant) and float activations
    X_test, y_test = page["X_test"], page["y_test"]
    assert g["ch09-acc-float"] == np.mean(
        page["predict"](mlp_p, X_test) == y_test)
    assert abs(g["ch09-acc-int8"] - g["ch09-acc-float"]) <= 0.01
    assert g["ch09-changed"] == int(np.sum(
        page["q_logits"].argmax(1) != page["pred"]))
    assert g["ch09-changed"] <= 3                   # "little or no"
    h = torch.from_numpy(X_test)
    for l in (1, 2):
        w = torch.from_numpy(mlp_p[f"W{l}"])
        s = w.abs().amax(1) / 127
        q = torch.round(w / s[:, None]).clamp(-127, 127) * s[:, None]
        np.testing.assert_allclose(
            q.numpy(), page["dequantize"](page["qparams"][f"W{l}"]),
            atol=1e-12)
        h = h @ q.T + torch.from_numpy(mlp_p[f"b{l}"])
        if l == 1:
            h = torch.relu(h)
    assert np.mean(h.argmax(1).numpy() == y_test) == pytest.approx(
        g["ch09-acc-int8"], abs=0.01)
