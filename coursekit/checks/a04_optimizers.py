"""Trusted checks of assignment 4 (optimizers, schedules): see coursekit.judge.

The reference is ``torch.optim`` (and ``torch.optim.lr_scheduler``) in
float64, run here in the grader on the same problem as the student's rule.
The student's rule runs in the sandboxed kernel, driven by a small public
driver (``DRIVER``, sent as code) that makes every update of a run and
returns the whole trajectory in one round trip. Known mistakes are
re-created here as NumPy variants of each rule (never sent to the kernel).

Problems: an ill-conditioned quadratic plus a quartic term, a logistic
regression (neither is quadratic), and a sequence of gradients given in
advance (the trajectory does not feed back into the gradients).
"""
import importlib
import threading

import numpy as np
import torch
from torch.optim import lr_scheduler

from coursekit.judge import hidden
from coursekit.remote import Code
from dlopt.grading import Feedback, Mistake, check_array, to_float_array

KERNEL = {"forbid": ["torch", "dlopt.optim", "dlopt.schedules"]}
STEPS = 60

# torch.optim's first step imports torch._dynamo (seconds, once per grader
# process). This module is loaded before the kernel starts: import it in
# the background while the kernel runs the notebook.
threading.Thread(target=importlib.import_module, args=("torch._dynamo",),
                 daemon=True, name="a04-warm-torch-optim").start()

# -- the public driver (runs in the kernel; no expected value in it) -----
DRIVER = r'''
import numpy as np


def init_state(theta):
    z = np.zeros_like(theta, dtype=float)
    return {"t": 0, "b": z.copy(), "s": z.copy(), "m": z.copy(),
            "v": z.copy()}


def gradient(problem, theta, k):
    kind = problem["kind"]
    if kind == "sequence":
        return problem["grads"][k].copy()
    x = np.asarray(theta, dtype=float).reshape(-1)
    if kind == "quartic":
        H, c = problem["H"], problem["c"]
        g = H @ (x - c) + x ** 3 / 10
    else:                                   # logistic regression
        A, y = problem["A"], problem["y"]
        g = -(A.T @ (y / (1 + np.exp(y * (A @ x))))) / len(y) \
            + problem["l2"] * x
    return g.reshape(np.shape(theta))


def drive(rule, theta0, problem, steps, hyper):
    """Run rule(theta, g, state, **hyper) for `steps` updates from theta0.

    Returns dict(thetas (steps, *theta0.shape), t (the state's t after
    each update), state (the last state), mutated (an input changed in
    place), bad / step (the first malformed result and its step)).
    """
    theta, out = np.array(theta0, dtype=float), []
    state, ts, mutated = init_state(theta), [], ""
    with np.errstate(all="ignore"):
        for k in range(steps):
            g = gradient(problem, theta, k)
            saved = (np.array(theta, copy=True), g.copy())
            res = rule(theta, g, state, **hyper)
            if not mutated and not np.array_equal(theta, saved[0],
                                                  equal_nan=True):
                mutated = "theta"
            if not mutated and not np.array_equal(g, saved[1],
                                                  equal_nan=True):
                mutated = "g"
            if not (type(res) is tuple and len(res) == 2
                    and type(res[1]) is dict):
                return {"bad": res, "step": k + 1, "what": "result"}
            new, state = res
            if not (type(new) is np.ndarray
                    and new.shape == np.shape(theta0)):
                return {"bad": new, "step": k + 1, "what": "theta"}
            out.append(np.array(new, copy=True))
            ts.append(state.get("t"))
            theta = new
    last = {k: v for k, v in state.items() if type(v) is np.ndarray}
    return {"thetas": np.stack(out), "t": ts, "state": last,
            "mutated": mutated, "step": 0}
'''

SCHEDULE_DRIVER = "lambda fn, K, kw: [fn(k, **kw) for k in range(K)]"





def _init_state(theta):
    z = np.zeros_like(theta, dtype=float)
    return {"t": 0, "b": z.copy(), "s": z.copy(), "m": z.copy(),
            "v": z.copy()}


# -- problems -------------------------------------------------------------
def _problem(rng, kind, steps):
    shape = tuple(int(k) for k in rng.integers(2, 5, size=2))
    n = int(np.prod(shape))
    theta0 = rng.normal(size=shape)
    if kind == "quartic":
        Q = np.linalg.qr(rng.normal(size=(n, n)))[0]
        H = Q @ np.diag(np.geomspace(0.05, 5.0, n)) @ Q.T
        H = (H + H.T) / 2                    # exactly symmetric
        return theta0, dict(kind=kind, H=H, c=rng.normal(size=n))
    if kind == "logistic":
        m = 3 * n
        A = rng.normal(size=(m, n)) * np.geomspace(0.2, 3.0, n)
        y = np.where(rng.random(m) < 0.5, -1.0, 1.0)
        return theta0, dict(kind=kind, A=A, y=y, l2=0.05)
    grads = rng.normal(size=(steps, *shape)) * \
        rng.uniform(0.05, 3.0, size=(steps,) + (1,) * len(shape))
    grads[rng.random(grads.shape) < 0.15] = 0.0      # some exact zeros
    return theta0, dict(kind="sequence", grads=grads)


def _np_grad(problem, theta, k):
    """The problem's gradient (NumPy, for the mistake variants)."""
    if problem["kind"] == "sequence":
        return problem["grads"][k].copy()
    x = theta.reshape(-1)
    if problem["kind"] == "quartic":
        g = problem["H"] @ (x - problem["c"]) + x ** 3 / 10
    else:
        A, y = problem["A"], problem["y"]
        g = -(A.T @ (y / (1 + np.exp(y * (A @ x))))) / len(y) \
            + problem["l2"] * x
    return g.reshape(theta.shape)


def _torch_objective(problem, x):
    """J(x) in torch, x flat (the objective the driver's gradient is of)."""
    if problem["kind"] == "quartic":
        H, c = torch.from_numpy(problem["H"]), torch.from_numpy(problem["c"])
        d = x - c
        return 0.5 * d @ H @ d + (x ** 4).sum() / 40
    A, y = torch.from_numpy(problem["A"]), torch.from_numpy(problem["y"])
    return torch.nn.functional.softplus(-y * (A @ x)).mean() \
        + 0.5 * problem["l2"] * (x ** 2).sum()


def _torch_grad(problem, p, k):
    """The gradient torch.optim is fed: closed form in torch (checked
    against torch.autograd of J by ``_torch_path`` on every run)."""
    if problem["kind"] == "sequence":
        return torch.from_numpy(problem["grads"][k].copy())
    x = p.detach().reshape(-1)
    if problem["kind"] == "quartic":
        H, c = torch.from_numpy(problem["H"]), torch.from_numpy(problem["c"])
        g = H @ (x - c) + x ** 3 / 10
    else:
        A, y = torch.from_numpy(problem["A"]), torch.from_numpy(problem["y"])
        g = -(A.T @ (y * torch.sigmoid(-y * (A @ x)))) / len(y) \
            + problem["l2"] * x
    return g.reshape(p.shape).clone()


def _autograd_agrees(problem, theta):
    x = torch.tensor(theta.reshape(-1), dtype=torch.float64,
                     requires_grad=True)
    _torch_objective(problem, x).backward()
    g = _torch_grad(problem, torch.from_numpy(theta), 0).reshape(-1)
    scale = 1.0 + float(g.abs().max())
    return float((x.grad - g).abs().max()) <= 1e-8 * scale


def _torch_path(opt_name, theta0, problem, steps, **kw):
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, opt_name)([p], **kw)
    path = []
    for k in range(steps):
        p.grad = _torch_grad(problem, p, k)
        opt.step()
        path.append(p.detach().numpy().copy())
    path = np.array(path)
    if problem["kind"] != "sequence":
        for theta in (theta0, path[steps // 2], path[-1]):
            if not _autograd_agrees(problem, theta):
                raise RuntimeError("grader bug: the closed-form gradient "
                                   "differs from torch.autograd")
    return path


def _np_path(rule, theta0, problem, steps, hyper, fresh_state=False):
    theta, state, path = np.array(theta0, float), _init_state(theta0), []
    with np.errstate(all="ignore"):
        for k in range(steps):
            if fresh_state:
                state = _init_state(theta)
            g = _np_grad(problem, theta, k)
            theta, state = rule(theta.copy(), g, state, **hyper)
            path.append(np.array(theta, float))
    return np.array(path)


# -- comparing trajectories -----------------------------------------------
def _describe(x) -> str:
    if x is None:
        return "None"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape}"
    if isinstance(x, tuple):
        return f"a tuple of {len(x)} items"
    if isinstance(x, list):
        return f"a list of {len(x)} items"
    if isinstance(x, dict):
        return "a dict"
    tname = getattr(x, "type_name", None) or type(x).__name__
    return f"an object of type {tname.split('.')[-1]}"


def _check_path(label, got, ref, mistakes, hint="", rtol=1e-7, atol=1e-9):
    """theta over the run vs torch, with the first step that differs.

    got, ref: (steps, *shape); ``mistakes()`` yields the named mistakes
    (computed only when the run differs). ``hint`` is added to the
    message when no named mistake explains the difference.
    """
    dtype = got.dtype
    got = np.asarray(got, dtype=float)
    excess = np.abs(got - ref) - (atol + rtol * np.abs(ref))
    if not (excess > 0).any():
        if dtype.kind == "f" and dtype.itemsize < 8:
            raise Feedback(f"{label}: theta comes back as {dtype}: compute "
                           f"in float64 (do not convert to {dtype})")
        return
    for m in mistakes():
        if m.value.shape == got.shape and np.all(
                np.abs(got - m.value) <= atol + rtol * np.abs(m.value)):
            raise Feedback(f"{label}: {m.message}")
    steps = got.shape[0]
    bad = (excess > 0).reshape(steps, -1).any(axis=1)
    k = int(np.argmax(bad))
    flat = excess[k].reshape(-1)
    i = int(np.argmax(flat))
    idx = tuple(int(j) for j in np.unravel_index(i, ref.shape[1:]))
    g, w = got[k].reshape(-1)[i], ref[k].reshape(-1)[i]
    rel_all = float(np.max(np.abs(got - ref)) /
                    max(float(np.max(np.abs(ref))), 1e-300))
    if dtype.kind == "f" and dtype.itemsize < 8 and rel_all < 1e-3:
        raise Feedback(
            f"{label}: your theta is {dtype} and agrees with torch only to "
            f"a relative error of {rel_all:.1e}, about {dtype}'s "
            f"precision: compute in float64 (no {dtype} anywhere)")
    msg = (f"{label}: theta first differs from torch at step t = {k + 1}, "
           f"index {idx}: got {g:.10g}, expected {w:.10g} (relative error "
           f"{abs(g - w) / max(abs(w), 1e-300):.1e}).")
    if rel_all < 1e-5:
        msg += (f" The whole run agrees to {rel_all:.1e}, the size of "
                f"float32 rounding: is part of your computation in float32? "
                f"Compute in float64.")
    elif k > 0:
        msg += (f" The first {k} update(s) agree: look at what your rule "
                f"carries from one step to the next in the state.")
    raise Feedback(f"{msg} {hint}".rstrip())


def _run_case(S, rng, name, kind, torch_name, torch_kw, hyper, variants,
              state_keys=(), nonfinite="", steps=STEPS):
    theta0, problem = _problem(rng, kind, steps)
    args = ", ".join(f"{k}={v}" for k, v in hyper.items())
    on = {"quartic": "a random quadratic-plus-quartic problem",
          "logistic": "a random logistic regression",
          "sequence": "a given sequence of random gradients"}[kind]
    label = f"{name}({args}), theta over {steps} steps on {on}"
    rule = S.function(name)
    res = S.run(Code(DRIVER, define="drive"), rule, theta0,
                       problem, steps, hyper)
    if res.get("step"):
        t, bad = res["step"], res["bad"]
        if res["what"] == "result":
            raise Feedback(f"{label}: at step t = {t} {name} returned "
                           f"{_describe(bad)}; it must return a tuple "
                           f"(new_theta, new_state) with the state a dict")
        if isinstance(bad, np.ndarray):
            raise Feedback(f"{label}: at step t = {t} the new theta has "
                           f"shape {bad.shape}; it must have theta's shape "
                           f"{theta0.shape}")
        raise Feedback(f"{label}: at step t = {t} the new theta is "
                       f"{_describe(bad)}; return a NumPy array of "
                       f"theta's shape {theta0.shape}")
    got = res["thetas"]
    if not isinstance(got, np.ndarray) or got.dtype.kind not in "fiu":
        raise Feedback(f"{label}: theta is not an array of real numbers")
    finite = np.isfinite(got.astype(float)).reshape(steps, -1).all(axis=1)
    if not finite.all():
        raise Feedback(f"{label}: theta became inf or NaN at step t = "
                       f"{int(np.argmin(finite)) + 1}. {nonfinite}".strip())
    ref = _torch_path(torch_name, theta0, problem, steps, **torch_kw)
    def mistakes():
        yield Mistake(_np_path(variants[None], theta0, problem, steps, hyper,
                               fresh_state=True),
                      "the state is not carried to the next step: every "
                      "update starts again from t = 0 and zero buffers. "
                      "Return the updated state (t and the buffers) as "
                      "new_state.")
        for msg, rule_ in variants.items():
            if msg is not None:
                yield Mistake(_np_path(rule_, theta0, problem, steps, hyper),
                              msg)
    hint = ""
    last = res.get("state") or {}
    for key in state_keys:
        val = last.get(key)
        if isinstance(val, np.ndarray) and not np.any(val):
            hint = (f"Your new_state[{key!r}] is still zero after {steps} "
                    f"updates: return the updated buffer in new_state.")
            break
    _check_path(label, got, ref, mistakes, hint)
    if res["mutated"]:
        bad, good = {"theta": ("theta -= ... or theta *= ...",
                               "theta = theta - ..."),
                     "g": ("g += ...", "g = g + ...")}[res["mutated"]]
        raise Feedback(
            f"{label}: {name} changed its input {res['mutated']} in place "
            f"(an augmented assignment such as {bad}): the caller still "
            f"owns it. Compute a new array instead ({good}).")
    ts = res["t"]
    want = list(range(1, steps + 1))
    try:
        ok = [int(t) for t in ts] == want
    except (TypeError, ValueError):
        ok = False
    if not ok:
        shown = ts[:4] if isinstance(ts, list) else ts
        raise Feedback(
            f"{label}: theta is right, but new_state['t'] after the "
            f"first updates is {shown}, not [1, 2, 3, 4]: the state is not "
            f"carried to the next step. Return new_state with t "
            f"incremented (t counts the updates made).")


def _step(name, S, *args, **kwargs):
    """One call of the student's rule (the notebook's visible checks)."""
    out = S.function(name)(*args, **kwargs)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise Feedback(f"{name} must return a tuple (new_theta, new_state)")
    return out


# -- the rules, in NumPy, with their known mistakes (grader side only) ----
def _sgd(kind=None):
    def rule(theta, g, state, lr, weight_decay=0.0):
        if kind == "no_wd":
            weight_decay = 0.0
        g = g + (-1 if kind == "wd_sign" else 1) * weight_decay * theta
        sign = 1 if kind == "sign" else -1
        return theta + sign * lr * g, dict(state, t=state["t"] + 1)
    return rule


def _mom(kind=None):
    def rule(theta, g, state, lr, mu, dampening=0.0):
        t = state["t"] + 1
        if kind == "ema":
            b = mu * state["b"] + (1 - mu) * g
        elif t == 1 and kind != "zero_init":
            b = g.copy()
        else:
            b = mu * state["b"] + (1 - dampening) * g
        sign = 1 if kind == "sign" else -1
        return theta + sign * lr * b, dict(state, t=t, b=b)
    return rule


def _nest(kind=None):
    def rule(theta, g, state, lr, mu):
        t = state["t"] + 1
        old = state["b"]
        b = g.copy() if t == 1 else mu * old + g
        if kind == "heavy":
            d = b
        elif kind == "old":
            d = g + mu * old
        else:
            d = g + mu * b
        sign = 1 if kind == "sign" else -1
        return theta + sign * lr * d, dict(state, t=t, b=b)
    return rule


def _ada(kind=None):
    def rule(theta, g, state, lr, eps=1e-10):
        s = state["s"] + g * g
        if kind == "eps_in":
            d = np.sqrt(s + eps)
        elif kind == "no_sqrt":
            d = s + eps
        else:
            d = np.sqrt(s) + eps
        sign = 1 if kind == "sign" else -1
        return theta + sign * lr * g / d, dict(state, t=state["t"] + 1, s=s)
    return rule


def _rms(kind=None):
    def rule(theta, g, state, lr, rho=0.99, eps=1e-8):
        t = state["t"] + 1
        if kind == "swap":
            v = (1 - rho) * state["v"] + rho * g * g
        elif kind == "sum_sq":
            v = rho * state["v"] + (1 - rho) * np.sum(g * g)
        else:
            v = rho * state["v"] + (1 - rho) * g * g
        vv = v / (1 - rho ** t) if kind == "bias" else v
        d = np.sqrt(vv + eps) if kind == "eps_in" else np.sqrt(vv) + eps
        sign = 1 if kind == "sign" else -1
        return theta + sign * lr * g / d, dict(state, t=t, v=v)
    return rule


def _adam(kind=None):
    def rule(theta, g, state, lr, betas=(0.9, 0.999), eps=1e-8,
             weight_decay=0.0):
        b1, b2 = betas
        t = state["t"] + 1
        if kind == "decoupled":
            theta = theta * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        m = b1 * state["m"] + (1 - b1) * g
        v = b2 * state["v"] + (1 - b2) * g * g
        k = t + 1 if kind == "t_plus" else t
        m_hat = m if kind in ("no_bias", "no_bias_m") else m / (1 - b1 ** k)
        v_hat = v if kind in ("no_bias", "no_bias_v") else v / (1 - b2 ** k)
        if kind == "eps_in":
            d = np.sqrt(v_hat + eps)
        elif kind == "eps_before":
            d = (np.sqrt(v) + eps) / np.sqrt(1 - b2 ** t)
        else:
            d = np.sqrt(v_hat) + eps
        sign = 1 if kind == "sign" else -1
        return theta + sign * lr * m_hat / d, dict(state, t=t, m=m, v=v)
    return rule


def _adamw(kind=None):
    def rule(theta, g, state, lr, betas=(0.9, 0.999), eps=1e-8,
             weight_decay=1e-2):
        b1, b2 = betas
        t = state["t"] + 1
        if kind == "coupled":
            g = g + weight_decay * theta
        elif kind == "no_lr":
            theta = theta * (1 - weight_decay)
        elif kind == "after":
            pass
        else:
            theta = theta * (1 - lr * weight_decay)
        m = b1 * state["m"] + (1 - b1) * g
        v = b2 * state["v"] + (1 - b2) * g * g
        nb = kind == "no_bias"
        m_hat = m if nb else m / (1 - b1 ** t)
        v_hat = v if nb else v / (1 - b2 ** t)
        if kind == "eps_in":
            d = np.sqrt(v_hat + eps)
        else:
            d = np.sqrt(v_hat) + eps
        sign = 1 if kind == "sign" else -1
        new = theta + sign * lr * m_hat / d
        if kind == "after":
            new = new * (1 - lr * weight_decay)
        return new, dict(state, t=t, m=m, v=v)
    return rule


KINDS = ("quartic", "logistic", "sequence")


# -- 1. SGD ------------------------------------------------------------------
def test_sgd(S, rng):
    theta, g = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    new, _ = _step("sgd_update", S, theta, g, _init_state(theta), lr=0.1)
    check_array("sgd_update(...) with lr=0.1", new, [0.95, -2.05], mistakes=[
        Mistake([1.05, -1.95], "the sign is flipped: gradient descent "
                "steps against the gradient, theta - lr * g."),
    ])
    variants = {
        None: _sgd(),
        "the sign is flipped: gradient descent steps against the "
        "gradient.": _sgd("sign"),
        "weight_decay is ignored: torch adds weight_decay * theta to the "
        "gradient.": _sgd("no_wd"),
        "the weight-decay term has the wrong sign: g + weight_decay * "
        "theta.": _sgd("wd_sign"),
    }
    with hidden():
        for (lr, wd), kind in zip([(0.05, 0.0), (0.02, 0.3), (0.1, 0.5)],
                                  KINDS):
            _run_case(S, rng, "sgd_update", kind, "SGD",
                      dict(lr=lr, weight_decay=wd),
                      dict(lr=lr, weight_decay=wd), variants)


# -- 2. momentum -------------------------------------------------------------
def test_momentum(S, rng):
    theta, g = np.array([0.0]), np.array([1.0])
    theta1, st = _step("momentum_update", S, theta, g, _init_state(theta),
                       lr=1.0, mu=0.9, dampening=0.5)
    theta2, st = _step("momentum_update", S, theta1, g, st, lr=1.0, mu=0.9,
                       dampening=0.5)
    check_array("theta after two momentum steps", theta2, [-2.4], mistakes=[
        Mistake([-1.45], "the momentum buffer is not initialised like "
                "torch: on the first update b_1 = g_1 (no dampening, no "
                "zero buffer)."),
        Mistake([2.4], "the sign is flipped: theta - lr * b."),
        Mistake([-2.45], "the momentum buffer is b = mu b + (1 - "
                "dampening) g: the gradient is scaled by (1 - dampening), "
                "not the buffer."),
        Mistake([-0.29], "you used an average b = mu b + (1 - mu) g; "
                "torch's buffer is b = mu b + (1 - dampening) g, starting "
                "at b_1 = g_1."),
        Mistake([-2.0], "the state is not carried to the next step: the "
                "second update starts again from t = 0 (b_2 = g_2). Return "
                "the new buffer and t in new_state."),
    ])
    variants = {
        None: _mom(),
        "the momentum buffer is not initialised like torch: on the first "
        "update b_1 = g_1, then b_t = mu b_(t-1) + (1 - dampening) g_t.":
            _mom("zero_init"),
        "the sign is flipped: theta - lr * b.": _mom("sign"),
        "you used an average b = mu b + (1 - mu) g; torch's buffer is "
        "b = mu b + (1 - dampening) g (starting at b_1 = g_1).":
            _mom("ema"),
    }
    with hidden():
        for (lr, mu, d), kind in zip([(0.02, 0.9, 0.0), (0.01, 0.8, 0.3),
                                      (0.05, 0.5, 0.7)], KINDS):
            _run_case(S, rng, "momentum_update", kind, "SGD",
                      dict(lr=lr, momentum=mu, dampening=d),
                      dict(lr=lr, mu=mu, dampening=d), variants,
                      state_keys=("b",))


# -- 3. Nesterov -------------------------------------------------------------
def test_nesterov(S, rng):
    theta = np.array([0.0])
    new, _ = _step("nesterov_update", S, theta, np.array([1.0]),
                   _init_state(theta), lr=0.1, mu=0.9)
    check_array("theta after one Nesterov step", new, [-0.19], mistakes=[
        Mistake([-0.1], "the first step of Nesterov momentum is lr (g + mu "
                "b_1) with b_1 = g: you stepped along the buffer alone "
                "(heavy ball)."),
        Mistake([0.19], "the sign is flipped."),
    ])
    variants = {
        None: _nest(),
        "this is heavy-ball momentum; Nesterov steps along g_t + mu b_t.":
            _nest("heavy"),
        "you used the previous buffer: the direction is g_t + mu b_t with "
        "the buffer already updated.": _nest("old"),
        "the sign is flipped.": _nest("sign"),
    }
    with hidden():
        for (lr, mu), kind in zip([(0.02, 0.9), (0.03, 0.6), (0.05, 0.8)],
                                  KINDS):
            _run_case(S, rng, "nesterov_update", kind, "SGD",
                      dict(lr=lr, momentum=mu, nesterov=True),
                      dict(lr=lr, mu=mu), variants, state_keys=("b",))


# -- 4. AdaGrad --------------------------------------------------------------
def test_adagrad(S, rng):
    theta = np.array([0.0, 0.0])
    new, _ = _step("adagrad_update", S, theta, np.array([3.0, -0.01]),
                   _init_state(theta), lr=0.5, eps=0.0)
    check_array("theta after one AdaGrad step", new, [-0.5, 0.5], mistakes=[
        Mistake([0.5, -0.5], "the sign is flipped."),
    ])
    variants = {
        None: _ada(),
        "eps is inside the square root; torch divides by sqrt(s_t) + eps.":
            _ada("eps_in"),
        "the square root is missing: divide by sqrt(s_t) + eps.":
            _ada("no_sqrt"),
        "the sign is flipped.": _ada("sign"),
    }
    with hidden():
        for (lr, eps), kind in zip([(0.1, 1e-10), (0.2, 0.3), (0.3, 0.5)],
                                   KINDS):
            _run_case(S, rng, "adagrad_update", kind, "Adagrad",
                      dict(lr=lr, eps=eps), dict(lr=lr, eps=eps), variants,
                      state_keys=("s",))


# -- 5. RMSprop --------------------------------------------------------------
def test_rmsprop(S, rng):
    theta = np.array([0.0])
    new, _ = _step("rmsprop_update", S, theta, np.array([2.0]),
                   _init_state(theta), lr=0.1, rho=0.75, eps=0.5)
    check_array("theta after one RMSprop step", new, [-0.2 / 1.5], mistakes=[
        Mistake([-0.2 / np.sqrt(1.5)], "eps is inside the square root; "
                "torch divides by sqrt(v_t) + eps."),
        Mistake([-0.2 / (np.sqrt(3.0) + 0.5)], "the weights are swapped: "
                "v = rho v + (1 - rho) g * g."),
        Mistake([0.2 / 1.5], "the sign is flipped."),
    ])
    variants = {
        None: _rms(),
        "eps is inside the square root; torch divides by sqrt(v_t) + eps.":
            _rms("eps_in"),
        "the weights are swapped: v = rho v + (1 - rho) g * g.":
            _rms("swap"),
        "RMSprop in torch has no bias correction (that is Adam's).":
            _rms("bias"),
        "the square is per coordinate (g * g, elementwise): a sum over the "
        "coordinates gives every coordinate the same scale.":
            _rms("sum_sq"),
        "the sign is flipped.": _rms("sign"),
    }
    with hidden():
        for (lr, rho, eps), kind in zip([(0.01, 0.99, 1e-8), (0.02, 0.9, 0.2),
                                         (0.05, 0.8, 0.1)], KINDS):
            _run_case(S, rng, "rmsprop_update", kind, "RMSprop",
                      dict(lr=lr, alpha=rho, eps=eps),
                      dict(lr=lr, rho=rho, eps=eps), variants,
                      state_keys=("v",))


# -- 6. Adam -----------------------------------------------------------------
_T0 = ("does t start at 0? The bias correction divides by 1 - beta**t, "
       "which is 0 for t = 0; increment t before using it.")


def test_adam(S, rng):
    theta = np.array([0.0, 0.0])
    new, _ = _step("adam_update", S, theta, np.array([2.0, -0.5]),
                   _init_state(theta), lr=0.1, eps=0.0)
    new = to_float_array("theta after one Adam step", new, (2,))
    if not np.all(np.isfinite(new)):
        raise Feedback(
            "your first Adam step is inf or NaN: does t start at 0? The "
            "bias correction divides by 1 - beta**t, which is 0 for t = 0; "
            "increment t before using it (t = 1 on the first update).")
    check_array("theta after one Adam step", new, [-0.1, 0.1], mistakes=[
        Mistake([-0.1 * 0.1 / np.sqrt(0.001), 0.1 * 0.1 / np.sqrt(0.001)],
                "missing bias correction: divide m_t by (1 - beta1**t) and "
                "v_t by (1 - beta2**t)."),
        Mistake([0.1, -0.1], "the sign is flipped."),
    ])
    variants = {
        None: _adam(),
        "missing bias correction: divide m_t by (1 - beta1**t) and v_t by "
        "(1 - beta2**t).": _adam("no_bias"),
        "missing bias correction of the first moment: m_hat = m_t / (1 - "
        "beta1**t).": _adam("no_bias_m"),
        "missing bias correction of the second moment: v_hat = v_t / (1 - "
        "beta2**t).": _adam("no_bias_v"),
        "t is off by one: t = 1 on the first update, not 2.":
            _adam("t_plus"),
        "eps is inside the square root; torch divides by sqrt(v_hat) + eps.":
            _adam("eps_in"),
        "eps is added before the bias correction of v; torch adds it to "
        "sqrt(v_hat).": _adam("eps_before"),
        "torch.optim.Adam's weight_decay is coupled L2: add weight_decay * "
        "theta to the gradient (decoupled decay is AdamW).":
            _adam("decoupled"),
        "the sign is flipped.": _adam("sign"),
    }
    with hidden():
        for (lr, betas, eps, wd), kind in zip(
                [(0.01, (0.9, 0.999), 1e-8, 0.0),
                 (0.02, (0.8, 0.95), 0.05, 0.0),
                 (0.01, (0.9, 0.99), 1e-3, 0.2)], KINDS):
            _run_case(S, rng, "adam_update", kind, "Adam",
                      dict(lr=lr, betas=betas, eps=eps, weight_decay=wd),
                      dict(lr=lr, betas=betas, eps=eps, weight_decay=wd),
                      variants, state_keys=("m", "v"), nonfinite=_T0)


# -- 7. AdamW ----------------------------------------------------------------
def test_adamw(S, rng):
    theta = np.array([1.0])
    new, _ = _step("adamw_update", S, theta, np.array([0.0]),
                   _init_state(theta), lr=0.1, weight_decay=0.5)
    new = to_float_array("theta after one AdamW step", new, (1,))
    if not np.all(np.isfinite(new)):
        raise Feedback(
            "your first AdamW step is inf or NaN: does t start at 0? "
            "Increment t before using it (t = 1 on the first update).")
    check_array("theta after one AdamW step with g = 0", new, [0.95],
                mistakes=[
        Mistake([0.9], "weight decay coupled where it should be decoupled: "
                "AdamW multiplies theta by (1 - lr * weight_decay) and "
                "keeps weight_decay * theta out of the moments."),
        Mistake([0.5], "the decay must be scaled by the learning rate: "
                "theta * (1 - lr * weight_decay)."),
        Mistake([1.0], "weight decay is missing: theta * (1 - lr * "
                "weight_decay)."),
    ])
    variants = {
        None: _adamw(),
        "weight decay coupled where it should be decoupled: AdamW "
        "multiplies theta by (1 - lr * weight_decay) and keeps "
        "weight_decay * theta out of the moments.": _adamw("coupled"),
        "the decay must be scaled by the learning rate: theta * (1 - lr * "
        "weight_decay).": _adamw("no_lr"),
        "decay theta_(t-1) before the Adam step (torch decays first).":
            _adamw("after"),
        "missing bias correction: divide m_t by (1 - beta1**t) and v_t by "
        "(1 - beta2**t).": _adamw("no_bias"),
        "eps is inside the square root; torch divides by sqrt(v_hat) + eps.":
            _adamw("eps_in"),
        "the sign is flipped.": _adamw("sign"),
    }
    with hidden():
        for (lr, betas, eps, wd), kind in zip(
                [(0.01, (0.9, 0.999), 1e-8, 0.1),
                 (0.03, (0.8, 0.99), 0.05, 0.5),
                 (0.02, (0.9, 0.95), 1e-3, 0.3)], KINDS):
            _run_case(S, rng, "adamw_update", kind, "AdamW",
                      dict(lr=lr, betas=betas, eps=eps, weight_decay=wd),
                      dict(lr=lr, betas=betas, eps=eps, weight_decay=wd),
                      variants, state_keys=("m", "v"),
                      nonfinite="does t start at 0? Increment t before "
                      "using it (t = 1 on the first update).")


# -- 8, 9. schedules ---------------------------------------------------------
def _schedule_values(S, name, K, **kw):
    fn = S.function(name)
    vals = S.run(Code(SCHEDULE_DRIVER), fn, K, kw)
    return to_float_array(f"the values of {name}", vals, (K,))


def _torch_schedule(make, lr, K):
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    vals = []
    for _ in range(K):
        vals.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(vals)


def test_step_lr(S, rng):
    got = _schedule_values(S, "step_lr", 7, lr=1.0, step_size=3, gamma=0.5)
    check_array("step_lr for k = 0..6", got, [1, 1, 1, .5, .5, .5, .25],
                mistakes=[
        Mistake([1, 1, .5, .5, .5, .25, .25], "off by one: k is the number "
                "of updates already made, so the rate is lr for k = 0, 1, "
                "2."),
        Mistake(0.5 ** (np.arange(7) / 3), "use integer division k // "
                "step_size: the rate is constant between drops."),
    ])
    with hidden():
        cases = [(0.3, 4, 0.7), (1.5, 7, 0.2),
                 (round(float(rng.uniform(0.1, 2)), 3),
                  int(rng.integers(2, 9)),
                  round(float(rng.uniform(0.1, 0.9)), 3))]
        for lr, size, gamma in cases:
            K = 40
            ref = _torch_schedule(
                lambda o: lr_scheduler.StepLR(o, size, gamma), lr, K)
            got = _schedule_values(S, "step_lr", K, lr=lr, step_size=size,
                                   gamma=gamma)
            k = np.arange(K)
            check_array(f"step_lr(lr={lr}, step_size={size}, "
                        f"gamma={gamma})", got, ref, mistakes=[
                Mistake(lr * gamma ** ((k + 1) // size), "off by one: k is "
                        "the number of updates already made (k = 0 "
                        "first)."),
                Mistake(lr * gamma ** (k / size), "use integer division "
                        "k // step_size: the rate is constant between "
                        "drops."),
                Mistake(lr * gamma ** (k % size), "use k // step_size (the "
                        "number of completed periods), not k % step_size."),
            ])


def test_cosine_lr(S, rng):
    got = _schedule_values(S, "cosine_lr", 5, lr=1.0, T_max=4, eta_min=0.2)
    check_array("cosine_lr for k = 0..4", got[[0, 2, 4]], [1.0, 0.6, 0.2],
                mistakes=[
        Mistake([1.8, 1.0, 0.2], "the factor 1/2 is missing: (1 + cos) / 2 "
                "goes from 1 to 0."),
    ])
    with hidden():
        cases = [(0.1, 10, 0.0), (2.0, 17, 0.3),
                 (round(float(rng.uniform(0.5, 3)), 3),
                  int(rng.integers(3, 25)),
                  round(float(rng.uniform(0.01, 0.4)), 3))]
        for lr, T, lo in cases:
            K = 2 * T + 3
            ref = _torch_schedule(
                lambda o: lr_scheduler.CosineAnnealingLR(o, T, lo), lr, K)
            got = _schedule_values(S, "cosine_lr", K, lr=lr, T_max=T,
                                   eta_min=lo)
            k = np.arange(K)
            check_array(f"cosine_lr(lr={lr}, T_max={T}, eta_min={lo})", got,
                        ref, rtol=1e-9, atol=1e-12, mistakes=[
                Mistake(lo + (lr - lo) * (1 + np.cos(np.pi * (k + 1) / T))
                        / 2, "off by one: k is the number of updates "
                        "already made (k = 0 first)."),
                Mistake(lo + (lr - lo) * (1 + np.cos(np.pi * k / T)),
                        "the factor 1/2 is missing."),
                Mistake(lr * (1 + np.cos(np.pi * k / T)) / 2, "eta_min is "
                        "missing: the rate ends at eta_min, not 0."),
            ])
