"""dlopt.optim against torch.optim: params and state at every step."""
import math

import numpy as np
import pytest
import torch

from dlopt import optim as O
from dlopt import schedules as S

torch.set_default_dtype(torch.float64)

STEPS = 60
SHAPES = {"W1": (6, 4), "b1": (6,), "W2": (3, 6), "b2": (3,)}


def _sched_torch(kind):
    """(our schedule factory, torch scheduler factory) or (None, None)."""
    if kind is None:
        return None, None
    if kind == "step":
        return (lambda lr: S.step(lr, 7, 0.5),
                lambda opt: torch.optim.lr_scheduler.StepLR(opt, 7, 0.5))
    if kind == "cosine":
        return (lambda lr: S.cosine(lr, 40, 1e-4),
                lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(
                    opt, 40, 1e-4))
    raise ValueError(kind)


T = torch.optim
# name: (ours(lr), torch(params, lr), lr, state map torch->ours)
BASE = {
    "sgd": (lambda lr: O.sgd(lr), lambda p, lr: T.SGD(p, lr), 1e-3, {}),
    "sgd_lr": (lambda lr: O.sgd(lr), lambda p, lr: T.SGD(p, lr), 0.05, {}),
    "sgd_momentum": (lambda lr: O.sgd(lr, momentum=0.9),
                     lambda p, lr: T.SGD(p, lr, momentum=0.9), 0.02,
                     {"momentum_buffer": "trace"}),
    "sgd_dampening": (lambda lr: O.sgd(lr, momentum=0.8, dampening=0.3),
                      lambda p, lr: T.SGD(p, lr, momentum=0.8,
                                          dampening=0.3), 0.02,
                      {"momentum_buffer": "trace"}),
    "sgd_nesterov": (lambda lr: O.sgd(lr, momentum=0.9, nesterov=True),
                     lambda p, lr: T.SGD(p, lr, momentum=0.9,
                                         nesterov=True), 0.02,
                     {"momentum_buffer": "trace"}),
    "sgd_wd": (lambda lr: O.sgd(lr, momentum=0.5, weight_decay=0.1),
               lambda p, lr: T.SGD(p, lr, momentum=0.5, weight_decay=0.1),
               0.02, {"momentum_buffer": "trace"}),
    "adagrad": (lambda lr: O.adagrad(lr), lambda p, lr: T.Adagrad(p, lr),
                1e-2, {"sum": "sum_of_squares", "step": "count"}),
    "adagrad_decay_init": (
        lambda lr: O.adagrad(lr, lr_decay=0.05, weight_decay=0.1,
                             initial_accumulator_value=0.5),
        lambda p, lr: T.Adagrad(p, lr, lr_decay=0.05, weight_decay=0.1,
                                initial_accumulator_value=0.5), 0.1,
        {"sum": "sum_of_squares", "step": "count"}),
    "rmsprop": (lambda lr: O.rmsprop(lr), lambda p, lr: T.RMSprop(p, lr),
                1e-2, {"square_avg": "nu", "step": "count"}),
    "rmsprop_centered": (
        lambda lr: O.rmsprop(lr, centered=True, weight_decay=0.01),
        lambda p, lr: T.RMSprop(p, lr, centered=True, weight_decay=0.01),
        1e-3, {"square_avg": "nu", "grad_avg": "mu"}),
    "rmsprop_momentum": (
        lambda lr: O.rmsprop(lr, alpha=0.9, momentum=0.7, centered=True),
        lambda p, lr: T.RMSprop(p, lr, alpha=0.9, momentum=0.7,
                                centered=True), 1e-3,
        {"square_avg": "nu", "grad_avg": "mu",
         "momentum_buffer": "trace"}),
    "adam": (lambda lr: O.adam(lr), lambda p, lr: T.Adam(p, lr), 1e-3,
             {"exp_avg": "mu", "exp_avg_sq": "nu", "step": "count"}),
    "adam_lr_betas": (lambda lr: O.adam(lr, betas=(0.8, 0.99), eps=1e-6),
                      lambda p, lr: T.Adam(p, lr, betas=(0.8, 0.99),
                                           eps=1e-6), 0.01,
                      {"exp_avg": "mu", "exp_avg_sq": "nu"}),
    "adam_wd": (lambda lr: O.adam(lr, weight_decay=0.1),
                lambda p, lr: T.Adam(p, lr, weight_decay=0.1), 1e-2,
                {"exp_avg": "mu", "exp_avg_sq": "nu"}),
    "amsgrad": (lambda lr: O.adam(lr, amsgrad=True),
                lambda p, lr: T.Adam(p, lr, amsgrad=True), 1e-2,
                {"exp_avg": "mu", "exp_avg_sq": "nu",
                 "max_exp_avg_sq": "nu_max"}),
    "nadam": (lambda lr: O.nadam(lr), lambda p, lr: T.NAdam(p, lr), 2e-3,
              {"exp_avg": "mu", "exp_avg_sq": "nu",
               "mu_product": "mu_product", "step": "count"}),
    "nadam_wd": (lambda lr: O.nadam(lr, weight_decay=0.1),
                 lambda p, lr: T.NAdam(p, lr, weight_decay=0.1), 1e-2,
                 {"exp_avg": "mu", "exp_avg_sq": "nu",
                  "mu_product": "mu_product"}),
    "adamw": (lambda lr: O.adamw(lr), lambda p, lr: T.AdamW(p, lr), 1e-3,
              {"exp_avg": "mu", "exp_avg_sq": "nu", "step": "count"}),
    "adamw_amsgrad": (
        lambda lr: O.adamw(lr, weight_decay=0.3, amsgrad=True),
        lambda p, lr: T.AdamW(p, lr, weight_decay=0.3, amsgrad=True), 1e-2,
        {"exp_avg": "mu", "exp_avg_sq": "nu", "max_exp_avg_sq": "nu_max"}),
}
# Every configuration once with a constant rate, plus schedules on a
# representative subset (and the schedule-sensitive AdamW / Adagrad).
CASES = [(n, None) for n in BASE] + [
    (n, s) for n, s in [
        ("sgd_momentum", "step"), ("sgd_nesterov", "cosine"),
        ("adagrad_decay_init", "step"), ("rmsprop_momentum", "cosine"),
        ("adam", "cosine"), ("amsgrad", "step"), ("nadam", "step"),
        ("adamw", "cosine"), ("adamw_amsgrad", "step"), ("sgd_wd", "step"),
    ]]


def _init_params(seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s) for k, s in SHAPES.items()}


def _grad_seq(seed=1):
    rng = np.random.default_rng(seed)
    return [{k: rng.normal(size=s) for k, s in SHAPES.items()}
            for _ in range(STEPS)]


_RNG = np.random.default_rng(2)
X = torch.tensor(_RNG.normal(size=(16, 4)))
Y = torch.tensor(_RNG.normal(size=(16, 3)))


def mlp_grads(params):
    """Gradients of a 2-layer tanh MLP's mean squared error (autograd)."""
    tp = {k: torch.tensor(np.asarray(v), requires_grad=True)
          for k, v in params.items()}
    H = torch.tanh(X @ tp["W1"].T + tp["b1"])
    out = H @ tp["W2"].T + tp["b2"]
    loss = 0.5 * ((out - Y) ** 2).sum(1).mean()
    loss.backward()
    return {k: v.grad.numpy() for k, v in tp.items()}


def _compare_state(topt, tparams, state, smap, step):
    for tname, ours in smap.items():
        for k, p in tparams.items():
            tv = topt.state[p][tname]
            ov = O.get_state(state, ours)
            if isinstance(ov, dict):
                ov = ov[k]
            tv = tv.numpy() if torch.is_tensor(tv) else tv
            np.testing.assert_allclose(
                ov, tv, rtol=1e-9, atol=1e-12,
                err_msg=f"state {tname} of {k} at step {step}")


def _run_pair(name, sched, source):
    ours_f, torch_f, lr, smap = BASE[name]
    our_s, torch_s = _sched_torch(sched)
    opt = ours_f(our_s(lr) if our_s else lr)
    params = _init_params()
    tparams = {k: torch.nn.Parameter(torch.tensor(v))
               for k, v in params.items()}
    topt = torch_f(list(tparams.values()), lr)
    tsched = torch_s(topt) if torch_s else None
    state = opt.init(params)
    seq = _grad_seq() if source == "fixed" else None
    for t in range(STEPS):
        if seq is not None:
            g_ours = seq[t]
            g_torch = seq[t]
        else:
            g_ours = mlp_grads(params)
            g_torch = mlp_grads({k: v.detach() for k, v in tparams.items()})
        for k, p in tparams.items():
            p.grad = torch.tensor(g_torch[k])
        topt.step()
        if tsched:
            tsched.step()
        updates, state = opt.update(g_ours, state, params)
        params = O.apply_updates(params, updates)
        for k, p in tparams.items():
            np.testing.assert_allclose(
                params[k], p.detach().numpy(), rtol=1e-9, atol=1e-12,
                err_msg=f"{name}/{sched}: param {k} at step {t + 1}")
        _compare_state(topt, tparams, state, smap, t + 1)
    return params


@pytest.mark.parametrize("source", ["fixed", "mlp"])
@pytest.mark.parametrize("name,sched", CASES)
def test_matches_torch(name, sched, source):
    final = _run_pair(name, sched, source)
    # the test compared something that moved
    assert any(np.abs(final[k] - v).max() > 1e-6
               for k, v in _init_params().items())


@pytest.mark.parametrize("name", ["sgd_nesterov", "rmsprop_momentum",
                                  "adam_wd", "amsgrad", "nadam",
                                  "adamw", "adagrad_decay_init"])
def test_numpy_and_torch_tensors_same_trajectory(name):
    opt = BASE[name][0](BASE[name][2])
    p_np = _init_params()
    p_t = {k: torch.tensor(v) for k, v in p_np.items()}
    s_np, s_t = opt.init(p_np), opt.init(p_t)
    for g in _grad_seq():
        u, s_np = opt.update(g, s_np, p_np)
        p_np = O.apply_updates(p_np, u)
        gt = {k: torch.tensor(v) for k, v in g.items()}
        u, s_t = opt.update(gt, s_t, p_t)
        p_t = O.apply_updates(p_t, u)
        assert all(torch.is_tensor(v) for v in p_t.values())
    for k in p_np:
        np.testing.assert_allclose(p_t[k].numpy(), p_np[k], rtol=1e-12,
                                   atol=1e-14)


INPLACE = {
    **{n: BASE[n][0] for n in BASE},
    "l1_clip_sgd": lambda lr: O.chain(
        O.clip_by_global_norm(1.0), O.add_l1(0.01), O.trace(0.9),
        O.scale(0.5), O.scale_by_learning_rate(lr)),
    "rss_sched": lambda lr: O.chain(O.scale_by_rss(0.1),
                                    O.scale_by_learning_rate(
                                        S.cosine(lr, 10))),
    "rms_plain_mom": lambda lr: O.rmsprop(lr, momentum=0.5),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_identical_to_pure(name, dtype, monkeypatch):
    """Without the BLAS fusion the chunked NumPy kernels are the pure
    rules bit for bit (the fused path is tested below, with a
    tolerance)."""
    monkeypatch.setattr(O, "_FUSED_AXPY", False)
    lr = BASE[name][2] if name in BASE else 0.05
    opt = INPLACE[name](lr)
    pure = {k: v.astype(dtype) for k, v in _init_params().items()}
    fast = {k: v.copy() for k, v in pure.items()}
    ids = {k: id(v) for k, v in fast.items()}
    s_pure, s_fast = opt.init(pure), opt.init(fast)
    for t, g in enumerate(_grad_seq()[:25]):
        g = {k: v.astype(dtype) for k, v in g.items()}
        g_copy = {k: v.copy() for k, v in g.items()}
        pure, s_pure = O.step(opt, pure, g, s_pure)
        # tiny chunks and 2 threads exercise the chunk boundaries
        fast, s_fast = O.step(opt, fast, g, s_fast, inplace=True,
                              threads=2, chunk=5)
        for k in pure:
            np.testing.assert_array_equal(fast[k], pure[k],
                                          err_msg=f"{name} {k} step {t}")
            np.testing.assert_array_equal(g[k], g_copy[k])  # grads intact
    assert {k: id(v) for k, v in fast.items()} == ids  # really in place
    for field in ("mu", "nu", "trace", "sum_of_squares", "count"):
        try:
            a, b = O.get_state(s_pure, field), O.get_state(s_fast, field)
        except KeyError:
            continue
        if isinstance(a, dict):
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
        else:
            assert a == b


BIG = {"W": (40, 37), "b": (37,)}     # long enough for BLAS's SIMD loop


def _big(rng, dtype):
    return {k: rng.normal(size=s).astype(dtype) for k, s in BIG.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_fused_close_to_pure(name, dtype):
    """The default fast path ends with one BLAS axpy, ``theta += a x``,
    a fused multiply-add: one rounding where the pure path rounds
    ``a x`` and then the sum.  So it may differ in the last bits (FMA
    rounding), by at most half an ulp of ``a x`` per step: measured
    <= 8 eps after 25 steps; asserted <= 32 eps * max|theta|."""
    lr = BASE[name][2] if name in BASE else 0.05
    opt = INPLACE[name](lr)
    rng = np.random.default_rng(3)
    pure = _big(rng, dtype)
    fast = {k: v.copy() for k, v in pure.items()}
    s_pure, s_fast = opt.init(pure), opt.init(fast)
    eps = np.finfo(dtype).eps
    for t in range(25):
        g = _big(rng, dtype)
        pure, s_pure = O.step(opt, pure, g, s_pure)
        fast, s_fast = O.step(opt, fast, g, s_fast, inplace=True,
                              threads=2, chunk=300)
        for k in pure:
            assert fast[k].dtype == dtype
            tol = 32 * eps * max(1.0, float(np.abs(pure[k]).max()))
            np.testing.assert_allclose(fast[k], pure[k], rtol=0, atol=tol,
                                       err_msg=f"{name} {k} step {t}")
    for field in ("mu", "nu", "trace", "sum_of_squares"):
        try:
            a, b = O.get_state(s_pure, field), O.get_state(s_fast, field)
        except KeyError:
            continue
        for k in a or ():
            tol = 32 * eps * max(1.0, float(np.abs(a[k]).max()))
            np.testing.assert_allclose(b[k], a[k], rtol=0, atol=tol)


def test_axpy_is_one_rounding():
    """``_axpy`` on float64 uses BLAS daxpy; every element is either the
    correctly rounded ``y + a x`` (fused) or the pure path's
    ``y + round(a x)``, nothing else."""
    from fractions import Fraction
    rng = np.random.default_rng(4)
    x, y0 = rng.normal(size=1024), rng.normal(size=1024)
    a = -0.0123
    assert O._axpy_fn(x, y0) is not None       # scipy's BLAS is used
    y = y0.copy()
    O._axpy(a, x, y, None)
    fused = np.array([float(Fraction(yi) + Fraction(a) * Fraction(xi))
                      for xi, yi in zip(x, y0)])
    two = y0 + a * x
    assert np.all((y == fused) | (y == two))
    assert np.any(y != two) or np.array_equal(fused, two)
    # a = 0 and other dtypes take the exact NumPy route
    y = y0.copy()
    with np.errstate(invalid="ignore"):
        O._axpy(0.0, np.full(1024, np.inf), y, np.empty(1024))
    assert np.isnan(y).all()
    x16, y16 = x.astype(np.float16), y0.astype(np.float16)
    ref = y16 + np.float16(a) * x16
    O._axpy(a, x16, y16, np.empty_like(y16))
    np.testing.assert_array_equal(y16, ref)


def test_blas_single_threaded_during_step_only(monkeypatch):
    """Inside a step BLAS runs on one thread (a threaded axpy per chunk
    is far slower); the user's setting is restored afterwards."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]
    seen = []
    saxpy = O._load_blas()[np.dtype(np.float32)]

    def spy(x, y, a):
        seen.append(blas_threads())
        return saxpy(x, y, a=a)
    monkeypatch.setitem(O._BLAS, np.dtype(np.float32), spy)
    opt = O.sgd(0.1, momentum=0.9)
    p = {"w": np.ones(50_000, np.float32)}
    g = {"w": np.full(50_000, 2.0, np.float32)}
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        p, s = O.step(opt, p, g, opt.init(p), inplace=True)
        assert blas_threads() == before
    assert seen and all(set(t) == {1} for t in seen)
    np.testing.assert_allclose(p["w"], 1.0 - 0.1 * 2.0, rtol=1e-6)


FAST_VS_TORCH = ["sgd_lr", "sgd_momentum", "sgd_nesterov", "sgd_wd",
                 "adam", "adam_wd", "adamw"]


@pytest.mark.parametrize("name", FAST_VS_TORCH)
def test_fast_path_matches_torch(name):
    """The in-place fast path (float64) against torch.optim: params and
    state at every step, as for the pure path."""
    ours_f, torch_f, lr, smap = BASE[name]
    opt = ours_f(lr)
    rng = np.random.default_rng(5)
    params = _big(rng, np.float64)
    tparams = {k: torch.nn.Parameter(torch.tensor(v))
               for k, v in params.items()}
    topt = torch_f(list(tparams.values()), lr)
    state = opt.init(params)
    for t in range(STEPS):
        g = _big(rng, np.float64)
        for k, p in tparams.items():
            p.grad = torch.tensor(g[k])
        topt.step()
        params, state = O.step(opt, params, g, state, inplace=True,
                               chunk=500)
        for k, p in tparams.items():
            np.testing.assert_allclose(
                params[k], p.detach().numpy(), rtol=1e-9, atol=1e-12,
                err_msg=f"{name}: param {k} at step {t + 1}")
        _compare_state(topt, tparams, state, smap, t + 1)


def test_inplace_falls_back_for_torch_tensors():
    opt = O.adam(0.01)
    p = {k: torch.tensor(v) for k, v in _init_params().items()}
    ref = {k: v.clone() for k, v in p.items()}
    s1, s2 = opt.init(p), opt.init(ref)
    g = {k: torch.tensor(v) for k, v in _grad_seq()[0].items()}
    p, s1 = O.step(opt, p, g, s1, inplace=True)
    ref, s2 = O.step(opt, ref, g, s2)
    for k in p:
        assert torch.equal(p[k], ref[k])


def test_l1_and_clip_pure_formulas():
    p = {"w": np.array([-2.0, 0.0, 3.0])}
    g = {"w": np.array([3.0, 4.0, 0.0])}
    u, _ = O.add_l1(0.5).update(g, O.EmptyState(), p)
    np.testing.assert_array_equal(u["w"], [2.5, 4.0, 0.5])
    clip = O.clip_by_global_norm(1.0)
    u, _ = clip.update(g, clip.init(p))
    assert math.isclose(np.linalg.norm(u["w"]), 1.0, rel_tol=1e-6)
    # torch's clip_grad_norm_ gives the same rescaled gradient
    tp = torch.nn.Parameter(torch.tensor(p["w"]))
    tp.grad = torch.tensor(g["w"])
    torch.nn.utils.clip_grad_norm_([tp], 1.0)
    np.testing.assert_allclose(u["w"], tp.grad.numpy(), rtol=1e-12)
    u, _ = O.clip_by_global_norm(10.0).update(g, O.EmptyState())
    np.testing.assert_array_equal(u["w"], g["w"])


# ----------------------------------------------------------- validation
@pytest.mark.parametrize("make,match", [
    (lambda: O.sgd(-0.1), "learning_rate must be >= 0"),
    (lambda: O.adam(float("nan")), "learning_rate must be finite"),
    (lambda: O.adam(float("inf")), "learning_rate must be finite"),
    (lambda: O.adam(1e-3, betas=(1.0, 0.999)), r"b1 \(betas\[0\]\)"),
    (lambda: O.adam(1e-3, betas=(0.9, -0.1)), r"b2 \(betas\[1\]\)"),
    (lambda: O.nadam(1e-3, betas=(0.9, 1.5)), r"b2 \(betas\[1\]\)"),
    (lambda: O.adam(1e-3, eps=0.0), "eps must be > 0"),
    (lambda: O.rmsprop(1e-3, alpha=1.0), "alpha must be in"),
    (lambda: O.sgd(0.1, nesterov=True), "nesterov"),
    (lambda: O.sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "nesterov"),
    (lambda: O.sgd(0.1, weight_decay=-1.0), "weight_decay must be >= 0"),
    (lambda: O.clip_by_global_norm(0.0), "max_norm must be > 0"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_type_lr():
    with pytest.raises(TypeError, match="learning_rate must be a real"):
        O.sgd("0.1")


def _one_update(opt, grads, params=None):
    params = params or {"w": np.ones((2, 3)), "b": np.ones(3)}
    return opt.update(grads, opt.init(params), params)


def test_mismatched_keys_and_shapes():
    good = {"w": np.ones((2, 3)), "b": np.ones(3)}
    with pytest.raises(KeyError, match=r"missing \['b'\]"):
        _one_update(O.adam(), {"w": good["w"]})
    with pytest.raises(KeyError, match=r"unexpected \['c'\]"):
        _one_update(O.adam(), {**good, "c": np.ones(1)})
    with pytest.raises(ValueError, match=r"grads\['w'\] has shape \(3, 2\)"):
        _one_update(O.sgd(0.1), {"w": np.ones((3, 2)), "b": good["b"]})
    with pytest.raises(TypeError, match="params must be a dict"):
        O.sgd(0.1).init([np.ones(3)])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_gradient_is_reported(bad):
    params = {"w": np.ones((2, 3)), "b": np.ones(3)}
    grads = {"w": np.ones((2, 3)), "b": np.array([0.0, bad, 1.0])}
    for opt in (O.sgd(0.1), O.adam(), O.adamw(), O.nadam()):
        with pytest.raises(FloatingPointError, match=r"grads\['b'\]"):
            _one_update(opt, grads, params)
        before = {k: v.copy() for k, v in params.items()}
        with pytest.raises(FloatingPointError, match=r"grads\['b'\]"):
            O.step(opt, params, grads, opt.init(params), inplace=True)
        for k in params:     # nothing was touched
            np.testing.assert_array_equal(params[k], before[k])
    # the check can be switched off; then it propagates (documented)
    u, _ = _one_update(O.sgd(0.1, check_finite=False), grads, params)
    assert not np.isfinite(u["b"][1])


@pytest.mark.parametrize("value,err,match", [
    ("fast", TypeError, "schedule returned str"),
    (None, TypeError, "schedule returned NoneType"),
    (float("nan"), ValueError, "schedule returned nan"),
    (-1.0, ValueError, "schedule returned -1.0"),
])
def test_bad_schedule_value(value, err, match):
    opt = O.sgd(lambda k: value)
    g = {"w": np.ones((2, 3)), "b": np.ones(3)}
    with pytest.raises(err, match=match):
        _one_update(opt, g)


def test_decayed_weights_needs_params():
    t = O.add_decayed_weights(0.1)
    with pytest.raises(ValueError, match="needs params"):
        t.update({"w": np.ones(2)}, t.init({"w": np.ones(2)}))


def test_clip_must_be_first_inplace():
    opt = O.chain(O.scale(2.0), O.clip_by_global_norm(1.0))
    p = {"w": np.ones(3)}
    with pytest.raises(ValueError, match="must come first"):
        O.step(opt, p, {"w": np.ones(3)}, opt.init(p), inplace=True)


def test_chain_rejects_non_transformations():
    with pytest.raises(TypeError, match="chain argument 1"):
        O.chain(O.scale(1.0), lambda g: g)


def test_first_step_is_t_equal_1():
    """Adam's first update is -lr * sign(g) (bias correction with t=1)."""
    opt = O.adam(0.1)
    p = {"w": np.zeros(3)}
    g = {"w": np.array([2.0, -3.0, 0.5])}
    u, s = opt.update(g, opt.init(p), p)
    np.testing.assert_allclose(u["w"], -0.1 * np.sign(g["w"]), rtol=1e-6)
    assert O.get_state(s, "count") == 1
