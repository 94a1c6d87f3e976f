"""dlopt.train.fit on a linear least-squares problem."""
import numpy as np
import pytest

from dlopt import optim as O
from dlopt import train as T

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 3))
W_TRUE = np.array([[1.5, -2.0, 0.5]])
Y = X @ W_TRUE.T + 0.3 + 0.05 * RNG.normal(size=(200, 1))
P0 = {"W": np.zeros((1, 3)), "b": np.zeros(1)}


def mse(params, Xb, yb):
    """L = ||X W^T + b - y||^2 / (2N) and its gradients."""
    r = Xb @ params["W"].T + params["b"] - yb
    n = len(Xb)
    return 0.5 * np.sum(r * r) / n, {"W": r.T @ Xb / n, "b": r.sum(0) / n}


def test_loss_decreases_and_fits():
    p, h = T.fit(P0, mse, (X, Y), O.sgd(0.1, momentum=0.9), epochs=30,
                 batch_size=16, seed=1)
    assert h.loss[-1] < 0.01 * h.loss[0]
    np.testing.assert_allclose(p["W"], W_TRUE, atol=0.05)
    assert np.all(P0["W"] == 0)            # input not modified
    assert len(h.loss) == 30 and h.val_loss == [] and not h.stopped_early


def test_seeded_shuffling_is_reproducible():
    a = T.fit(P0, mse, (X, Y), O.adam(0.05), epochs=3, batch_size=7,
              seed=3)[1].loss
    b = T.fit(P0, mse, (X, Y), O.adam(0.05), epochs=3, batch_size=7,
              seed=3)[1].loss
    c = T.fit(P0, mse, (X, Y), O.adam(0.05), epochs=3, batch_size=7,
              seed=4)[1].loss
    assert a == b and a != c


def test_early_stopping_restores_best():
    Xv = RNG.normal(size=(50, 3))
    # a validation set whose targets disagree with training: val loss
    # bottoms out and rises, so early stopping must trigger
    yv = Xv @ np.array([[0.5, -0.5, 0.0]]).T
    seen = []

    def acc(params, Xe, ye):
        seen.append({k: v.copy() for k, v in params.items()})
        return -mse(params, Xe, ye)[0]
    p, h = T.fit(P0, mse, (X, Y), O.sgd(0.02), epochs=200, batch_size=50,
                 val=(Xv, yv), early_stopping=3, metrics={"neg": acc})
    assert h.stopped_early and len(h.loss) < 200
    assert h.best_epoch == int(np.argmin(h.val_loss))
    assert len(h.loss) == h.best_epoch + 1 + 3
    np.testing.assert_array_equal(p["W"], seen[h.best_epoch]["W"])
    assert mse(p, Xv, yv)[0] == pytest.approx(min(h.val_loss))
    assert h.metrics["neg"][h.best_epoch] == pytest.approx(
        -h.val_loss[h.best_epoch])


def test_progress_bar_silent_in_tests(capsys, monkeypatch):
    monkeypatch.delenv("DLOPT_PROGRESS", raising=False)
    T.fit(P0, mse, (X, Y), O.sgd(0.1), epochs=25, batch_size=64)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert not T._want_progress(None, 100)       # stderr is not a TTY
    monkeypatch.setenv("DLOPT_PROGRESS", "0")
    assert not T._want_progress(None, 100)
    monkeypatch.setenv("DLOPT_PROGRESS", "1")
    assert T._want_progress(None, 100)
    assert not T._want_progress(False, 100)


def test_forced_progress_bar_writes_to_stderr(capsys):
    T.fit(P0, mse, (X, Y), O.sgd(0.1), epochs=2, batch_size=64,
          progress=True)
    assert "fit" in capsys.readouterr().err


@pytest.mark.parametrize("kw,err,match", [
    (dict(data=(X, Y[:10])), ValueError, "same, non-zero number of rows"),
    (dict(data=X), TypeError, r"data must be a pair"),
    (dict(epochs=0), ValueError, "epochs must be an int >= 1"),
    (dict(batch_size=2.5), ValueError, "batch_size must be an int"),
    (dict(optimizer=lambda g: g), TypeError, "GradientTransformation"),
    (dict(params=[1.0]), TypeError, "params must be a dict"),
    (dict(early_stopping=0), ValueError, "early_stopping"),
])
def test_errors(kw, err, match):
    args = dict(params=P0, loss_and_grads=mse, data=(X, Y),
                optimizer=O.sgd(0.1))
    args.update(kw)
    with pytest.raises(err, match=match):
        T.fit(**args)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_reported():
    with pytest.raises((FloatingPointError,), match="loss is|grads"):
        T.fit(P0, mse, (X * 1e3, Y), O.sgd(10.0, check_finite=True),
              epochs=50, batch_size=200)


def test_evaluation_mode_reaches_a_train_parameter():
    """A loss with a ``train`` parameter is called with train=True on
    the batches and train=False for the validation loss."""
    calls = []

    def loss(params, Xb, yb, train=True):
        calls.append((train, len(Xb)))
        L, g = mse(params, Xb, yb)
        return (L + (1.0 if train else 0.0)), g
    _, h = T.fit(P0, loss, (X, Y), O.sgd(0.01), epochs=2, batch_size=64,
                 val=(X[:10], Y[:10]), progress=False)
    assert {t for t, n in calls if n == 10} == {False}
    assert {t for t, n in calls if n != 10} == {True}
    ref = mse(P0, X[:10], Y[:10])[0]         # eval loss has no +1
    assert h.val_loss[0] < h.loss[0] and abs(h.val_loss[0] - ref) < 1.0


def test_fit_takes_a_students_transformation():
    def my_sgd(lr):
        def update(grads, state, params=None):
            return {k: -lr * g for k, g in grads.items()}, state
        return O.GradientTransformation(lambda p: (), update)
    a, _ = T.fit(P0, mse, (X, Y), my_sgd(0.1), epochs=3, progress=False)
    b, _ = T.fit(P0, mse, (X, Y), O.sgd(0.1), epochs=3, progress=False)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
