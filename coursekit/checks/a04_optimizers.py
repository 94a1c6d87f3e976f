"""Trusted checks of assignment 4 (the optimizer as a mapping): see
coursekit.judge.

The student writes building blocks as ``GradientTransformation(init,
update)`` pairs and composes the optimizers of ``torch.optim`` with the
course's ``chain``. Each composition runs in the sandboxed kernel through
one public driver (``DRIVER``, sent as code): it builds the student's
optimizer from fresh hyperparameters, runs every update of a run on a
problem that is not quadratic (a logistic regression whose scores come
from a matrix ``W`` and a bias ``b``, plus a Rosenbrock valley in ``z``:
three arrays of different shapes) and returns the whole trajectory, the
named state fields at every step and what went wrong (an input changed
in place, a malformed update, a state that did not move) in one round
trip. The reference is ``torch.optim`` in float64 on the same problem,
fed the driver's closed-form gradients, which are checked against
``torch.autograd`` on every problem; params *and* state are compared
at every step. Known mistakes are re-created here as NumPy variants of
the rules (never sent to the kernel). Schedules are compared with
``torch.optim.lr_scheduler``; Newton's step with Hessians from
``torch.autograd.functional.hessian``; the line search with a
backtracking loop written here.
"""
import importlib
import threading

import numpy as np
import torch
from torch.optim import lr_scheduler

from coursekit.judge import hidden, note, show
from coursekit.remote import Code
from dlopt.grading import Feedback, Mistake, check_array, to_float_array

KERNEL = {"forbid": ["torch", "dlopt.optim.transform", "dlopt.optim.alias",
                     "dlopt.schedules", "dlopt.second_order"]}
STEPS = 30

# torch.optim's first step imports torch._dynamo (seconds, once per grader
# process): import it in the background while the kernel runs the notebook.
threading.Thread(target=importlib.import_module, args=("torch._dynamo",),
                 daemon=True, name="a04-warm-torch-optim").start()

# -- the public driver (runs in the kernel; no expected value in it) -----
DRIVER = r'''
import numpy as np

ROSEN = 0.05          # weight of the Rosenbrock valley in z


def gradient(problem, params):
    """Gradient of J = mean softplus(-y s) + ROSEN * rosenbrock(z),
    s = (X @ W + b) @ a, at params {"W": (d, 2), "b": (2,), "z": (2,)}."""
    X, y, a = problem["X"], problem["y"], problem["a"]
    W, b, z = params["W"], params["b"], params["z"]
    s = (X @ W + b) @ a
    r = -y / (1 + np.exp(y * s)) / len(y)
    q = z[1] - z[0] ** 2
    gz = ROSEN * np.array([-2 * (1 - z[0]) - 400 * z[0] * q, 200 * q])
    return {"W": np.outer(X.T @ r, a), "b": np.sum(r) * a, "z": gz}


def find(state, field, depth=0):
    """The first field named `field` in a nested state (named tuples in
    tuples), or None."""
    if depth > 20:
        return None
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        if field in state._fields:
            return getattr(state, field)
    if isinstance(state, (tuple, list)):
        for s in state:
            got = find(s, field, depth + 1)
            if got is not None:
                return got
    return None


def arrays(x, depth=0):
    """Every NumPy array in a nested state, in order."""
    if depth > 20:
        return []
    if type(x) is np.ndarray:
        return [x]
    if isinstance(x, dict):
        return [a for v in x.values() for a in arrays(v, depth + 1)]
    if isinstance(x, (tuple, list)):
        return [a for v in x for a in arrays(v, depth + 1)]
    return []


def drive(make, kw, params0, problem, steps, fields):
    """Build make(**kw) and run `steps` updates from params0.

    Returns dict(params {key: (steps, *shape)}, state {field: {key:
    (steps, *shape)} or (steps,)}, count (steps,), mutated, stale,
    dtype, bad / step / what (the first malformed result and its step)).
    """
    opt = make(**kw)
    if not (isinstance(opt, tuple) and hasattr(opt, "init")
            and hasattr(opt, "update")):
        return {"bad": type(opt).__name__, "step": 0, "what": "optimizer"}
    params = {k: np.array(v, dtype=float) for k, v in params0.items()}
    state = opt.init({k: v.copy() for k, v in params.items()})
    path = {k: [] for k in params}
    rec = {f: [] for f in fields}
    counts, mutated, stale, dtype = [], "", 0, ""
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            grads = gradient(problem, params)
            old = [a.copy() for a in arrays(state)]
            saved = ({k: v.copy() for k, v in params.items()},
                     {k: v.copy() for k, v in grads.items()})
            res = opt.update(grads, state, params)
            for name, d, s in (("params", params, saved[0]),
                               ("grads", grads, saved[1])):
                if not mutated and any(not np.array_equal(
                        d[k], s[k], equal_nan=True) for k in d):
                    mutated = name
            now = arrays(state)
            if not mutated and (len(now) != len(old) or any(
                    not np.array_equal(a, b, equal_nan=True)
                    for a, b in zip(now, old))):
                mutated = "state"
            if not (type(res) is tuple and len(res) == 2):
                return {"bad": type(res).__name__, "step": t,
                        "what": "result"}
            updates, new_state = res
            if type(updates) is not dict or set(updates) != set(params):
                keys = sorted(updates) if type(updates) is dict else None
                return {"bad": keys, "step": t, "what": "keys",
                        "type": type(updates).__name__}
            for k, u in updates.items():
                if type(u) is not np.ndarray or u.shape != params[k].shape:
                    return {"bad": [k, type(u).__name__,
                                    list(np.shape(u))], "step": t,
                            "what": "update"}
                if u.dtype != np.float64 and not dtype:
                    dtype = str(u.dtype)
            if t > 1 and new_state is state and old:
                stale += 1
            elif t > 1 and old and len(arrays(new_state)) == len(old) \
                    and all(np.array_equal(a, b) for a, b in
                            zip(arrays(new_state), old)):
                stale += 1
            params = {k: params[k] + updates[k] for k in params}
            for k in params:
                path[k].append(np.array(params[k], dtype=float))
            for f in fields:
                v = find(new_state, f)
                if isinstance(v, dict):
                    v = {k: np.array(x, dtype=float) if type(x) is
                         np.ndarray else None for k, x in v.items()}
                elif isinstance(v, (int, float, np.number)):
                    v = float(v)
                else:
                    v = None
                rec[f].append(v)
            c = find(new_state, "count")
            counts.append(int(c) if isinstance(c, (int, np.integer))
                          else -1)
            state = new_state
    out = {"params": {k: np.stack(v) for k, v in path.items()},
           "count": np.array(counts), "mutated": mutated, "stale": stale,
           "dtype": dtype, "step": 0, "state": {}}
    for f, vals in rec.items():
        if all(isinstance(v, float) for v in vals):
            out["state"][f] = np.array(vals)
        elif all(isinstance(v, dict) and set(v) == set(params) and all(
                type(x) is np.ndarray and x.shape == params[k].shape
                for k, x in v.items()) for v in vals):
            out["state"][f] = {k: np.stack([v[k] for v in vals])
                               for k in params}
    return out
'''

_NS: dict = {}
exec(compile(DRIVER, "<a04 driver>", "exec"), _NS)     # our own code
_np_gradient = _NS["gradient"]
KEYS = ("W", "b", "z")


# -- problems -------------------------------------------------------------
def _problem(rng):
    d, m = int(rng.integers(3, 6)), 32
    X = rng.normal(size=(m, d))
    y = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    a = rng.normal(size=2)
    params0 = {"W": 0.5 * rng.normal(size=(d, 2)),
               "b": 0.5 * rng.normal(size=2),
               "z": np.array([-1.0, 1.0]) + 0.3 * rng.normal(size=2)}
    return params0, dict(X=X, y=y, a=a)


def _torch_loss(problem, P):
    X, y, a = (torch.from_numpy(problem[k]) for k in ("X", "y", "a"))
    s = (X @ P["W"] + P["b"]) @ a
    z = P["z"]
    rosen = (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2
    return torch.nn.functional.softplus(-y * s).mean() + \
        _NS["ROSEN"] * rosen


TORCH_STATE = {"trace": "momentum_buffer", "sum_of_squares": "sum",
               "nu": None, "mu": "exp_avg", "mu_product": "mu_product"}


def _torch_run(name, kw, params0, problem, steps, fields):
    """torch.optim.<name>(**kw) for `steps` updates. The gradients are the
    driver's closed form in float64 (``_autograd_agrees`` checks it against
    torch.autograd on each problem; autograd at every step made a run 2-4
    times slower). Returns params {key: (steps, *shape)}, state {torch
    name: ...}."""
    P = {k: torch.tensor(v, dtype=torch.float64) for k, v in
         params0.items()}
    opt = getattr(torch.optim, name)([P[k] for k in KEYS], foreach=False,
                                     **kw)
    path = {k: [] for k in KEYS}
    st = {f: ([] if f in ("step", "mu_product") else
              {k: [] for k in KEYS}) for f in fields}
    for _ in range(steps):
        g = _np_gradient(problem, {k: P[k].numpy() for k in KEYS})
        for k in KEYS:
            P[k].grad = torch.from_numpy(g[k])
        opt.step()
        for k in KEYS:
            path[k].append(P[k].detach().numpy().copy())
        s = opt.state[P["W"]]
        for f in fields:
            if isinstance(st[f], list):
                st[f].append(float(s[f]))
            else:
                for k in KEYS:
                    st[f][k].append(opt.state[P[k]][f].numpy().copy())
    return ({k: np.array(v) for k, v in path.items()},
            {f: (np.array(v) if isinstance(v, list) else
                 {k: np.array(x) for k, x in v.items()})
             for f, v in st.items()})


def _autograd_agrees(params0, problem):
    """The driver's closed-form gradient is torch.autograd's (a grader bug
    otherwise, never the student's)."""
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in params0.items()}
    _torch_loss(problem, P).backward()
    g = _np_gradient(problem, params0)
    for k in KEYS:
        ref = P[k].grad.numpy()
        if np.max(np.abs(ref - g[k])) > 1e-10 * (1 + np.max(np.abs(ref))):
            raise RuntimeError(f"grader bug: the driver's gradient of {k} "
                               f"differs from torch.autograd")


# -- NumPy variants (the named mistakes) -----------------------------------
def _np_run(kind, hp, params0, problem, steps, **flag):
    """The rule of ``kind`` with the hyperparameters ``hp``, as torch
    computes it unless a flag re-creates a named mistake."""
    p = {k: np.array(v, dtype=float) for k, v in params0.items()}
    z = {k: np.zeros_like(v) for k, v in p.items()}
    b, s, m, v = dict(z), {k: x + hp.get("init_acc", 0.0) for k, x in
                           z.items()}, dict(z), dict(z)
    prod, path = 1.0, {k: [] for k in p}
    lr, wd = hp["lr"], hp.get("weight_decay", 0.0)
    b1, b2 = hp.get("betas", (0.9, 0.999))
    eps = hp.get("eps", 0.0)
    sgn = -1.0 if flag.get("sign") else 1.0

    def root(x):
        return np.sqrt(x + eps) if flag.get("eps_in") else np.sqrt(x) + eps

    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            g0 = _np_gradient(problem, p)
            tc = 1 if flag.get("count_stuck") else t
            new = {}
            mu_t = b1 * (1 - 0.5 * 0.96 ** (tc * hp.get("psi", 4e-3)))
            mu_n = b1 * (1 - 0.5 * 0.96 ** ((tc + 1) * hp.get("psi", 4e-3)))
            if flag.get("mu_const"):
                mu_t = mu_n = b1
            if flag.get("mu_same"):
                mu_n = mu_t
            prod = prod * mu_t
            for k, x in p.items():
                g = g0[k]
                coupled = kind != "adamw" or flag.get("coupled")
                if flag.get("decoupled"):
                    coupled = False
                if coupled and not flag.get("no_wd"):
                    g = g + wd * x
                if kind == "sgd":
                    mu, d = hp.get("momentum", 0.0), hp.get("dampening", 0.0)
                    if mu:
                        if flag.get("ema"):
                            b[k] = mu * b[k] + (1 - mu) * g
                        elif t == 1 and not flag.get("b0zero"):
                            b[k] = g.copy()
                        else:
                            b[k] = mu * b[k] + (1 - d) * g
                        u = b[k]
                        if hp.get("nesterov") and not flag.get("heavy"):
                            u = g + mu * b[k]
                    else:
                        u = g
                elif kind == "adagrad":
                    s[k] = s[k] + g * g
                    u = g / root(s[k])
                elif kind == "rmsprop":
                    al = hp.get("alpha", 0.99)
                    sq = np.sum(g * g) if flag.get("sum_sq") else g * g
                    if flag.get("swap"):
                        v[k] = (1 - al) * v[k] + al * sq
                    else:
                        v[k] = al * v[k] + (1 - al) * sq
                    u = g / root(v[k])
                else:                                 # adam, adamw, nadam
                    m[k] = b1 * m[k] + (1 - b1) * g
                    v[k] = b2 * v[k] + (1 - b2) * g * g
                    c1 = 1.0 if flag.get("no_bias") else 1 - b1 ** tc
                    c2 = 1.0 if flag.get("no_bias") else 1 - b2 ** tc
                    if kind == "nadam":
                        dd = root(v[k] / c2)
                        den = 1 - mu_t if flag.get("no_prod") else 1 - prod
                        u = (1 - mu_t) / den * g / dd + \
                            mu_n / (1 - prod * mu_n) * m[k] / dd
                    else:
                        u = (m[k] / c1) / root(v[k] / c2)
                y = x - sgn * lr * u
                if kind == "adamw" and not coupled:
                    if flag.get("wd_no_lr"):
                        y = y - wd * x
                    elif flag.get("decay_after_lr"):
                        y = y + wd * x
                    else:
                        y = y - sgn * lr * wd * x
                new[k] = y
            p = new
            for k in p:
                path[k].append(p[k].copy())
    return {k: np.array(x) for k, x in path.items()}


# -- comparing runs -----------------------------------------------------------
def _flat(run):
    return np.concatenate([run[k].reshape(len(run[k]), -1) for k in KEYS],
                          axis=1)


def _float32_direction(G, p0, hp) -> bool:
    """Was AdamW's Adam direction rounded to float32 (a float32 block
    whose output the float64 decay upcasts)?  Its run can agree with
    torch to 1e-6 or not, depending on the draw; its direction cannot
    hide. ``theta_t = theta_(t-1) - lr (d_t + wd theta_(t-1))`` gives
    back ``d_t`` to about 1e-14; a float64 direction is a float32 in
    about 1 entry of 200 (zeros, mostly), a float32 one in every entry
    (measured on 40 draws each)."""
    prev = np.vstack([p0[None], G[:-1]])
    d = -(G - prev) / hp["lr"] - hp["weight_decay"] * prev
    d32 = d.astype(np.float32)
    ulp = np.spacing(np.abs(d32)).astype(float)
    return bool(np.mean(np.abs(d - d32) <= 1e-3 * ulp) > 0.5)


def _close(a, b, rtol=1e-7, atol=1e-9):
    return a.shape == b.shape and bool(np.all(
        np.abs(a - b) <= atol + rtol * np.abs(b)))


def _first_diff(label, what, got, ref, rtol=1e-7, atol=1e-9):
    """Feedback naming the first step, key and index that differ."""
    keys = KEYS if isinstance(ref, dict) else (None,)
    steps = len(ref[KEYS[0]]) if isinstance(ref, dict) else len(ref)
    for t in range(steps):
        for k in keys:
            g = np.asarray(got[k][t] if k else got[t], dtype=float)
            w = np.asarray(ref[k][t] if k else ref[t], dtype=float)
            bad = ~(np.abs(g - w) <= atol + rtol * np.abs(w))
            if bad.any():
                i = int(np.argmax(bad.reshape(-1)))
                idx = tuple(int(j) for j in np.unravel_index(i, w.shape))
                gv, wv = g.reshape(-1)[i], w.reshape(-1)[i]
                name = f"{what}[{k!r}]{list(idx) if idx else ''}" if k \
                    else what
                rel = abs(gv - wv) / max(abs(wv), 1e-300)
                msg = (f"{label}: {name} first differs from torch at step "
                       f"t = {t + 1}: got {gv:.10g}, expected {wv:.10g} "
                       f"(relative error {rel:.1e}).")
                if t > 0:
                    msg += (f" The first {t} update(s) agree: look at what "
                            f"your blocks carry to the next step in the "
                            f"state.")
                if rel < 1e-4:
                    msg += (" An error of that size is float32 rounding: "
                            "compute in float64 throughout.")
                return Feedback(msg)
    return None


def _run_case(S, rng, name, kw, torch_name, torch_kw, kind, hp, variants,
              fields=(), count=True):
    """Run the student's ``name(**kw)`` and torch's optimizer; compare."""
    fields = tuple(fields)
    tfields = [TORCH_STATE.get(f) or _nu_name(torch_name) for f in fields]
    if count:
        tfields.append("step")
    for _ in range(10):     # a problem on which torch's run stays bounded
        params0, problem = _problem(rng)
        ref, ref_state = _torch_run(torch_name, torch_kw, params0, problem,
                                    STEPS, tfields)
        if np.all(np.abs(_flat(ref)) < 1e3):
            break
    else:
        raise RuntimeError("grader bug: torch's run diverges on every "
                           "problem drawn")
    _autograd_agrees(params0, problem)
    args = ", ".join(f"{k}={v}" for k, v in kw.items())
    label = (f"{name}({args}), {STEPS} steps on a logistic regression plus "
             f"a Rosenbrock valley (params W {params0['W'].shape}, b (2,), "
             f"z (2,))")
    res = S.run(Code(DRIVER, define="drive"), S.function(name), kw, params0,
                problem, STEPS, list(fields))
    if res.get("step") or res.get("what") == "optimizer":
        t, bad, what = res["step"], res["bad"], res["what"]
        if what == "optimizer":
            raise Feedback(f"{label}: {name}(...) returned {bad}; return a "
                           f"GradientTransformation(init, update) (e.g. "
                           f"from chain(...))")
        if what == "result":
            raise Feedback(f"{label}: at step t = {t} update returned "
                           f"{bad}; it must return a tuple (updates, "
                           f"new_state)")
        if what == "keys":
            if bad is None:
                raise Feedback(f"{label}: at step t = {t} the updates are "
                               f"a {res.get('type')}; return a dict "
                               f"{{key: array}} with every key of params")
            raise Feedback(f"{label}: at step t = {t} the updates have the "
                           f"keys {bad}, the params {sorted(params0)}: "
                           f"return an update for every array of params "
                           f"(loop over all keys)")
        k, tname, shape = bad
        if tname == "list":
            raise Feedback(f"{label}: at step t = {t} updates[{k!r}] is a "
                           f"Python list; return a NumPy array of shape "
                           f"{params0[k].shape}")
        what = f"has shape {tuple(shape)}" if tname == "ndarray" else \
            f"is a {tname}"
        raise Feedback(f"{label}: at step t = {t} updates[{k!r}] {what}; "
                       f"it must be a NumPy array of params[{k!r}]'s shape "
                       f"{params0[k].shape}")
    got = res["params"]
    fin = np.isfinite(_flat(got)).all(axis=1)
    finite = STEPS if fin.all() else int(np.argmin(fin))
    if res["mutated"] in ("params", "grads", "state"):
        # seen by the driver in the kernel, which the student's code could
        # fake: a note worth no points (the values are what is graded)
        what = res["mutated"]
        note(f"{name}'s update changed its input {what} in place (e.g. "
             f"{what}[k] += ... or an augmented assignment on one of its "
             f"arrays): the caller still owns it, and a pure update "
             f"computes new arrays. (Only the values your optimizer returns "
             f"are graded: what it does to its inputs inside your kernel "
             f"cannot be verified from outside.)")
    G, R = _flat(got), _flat(ref)
    # Tolerance: rounding (torch's lerp and addcdiv against NumPy's
    # operators) grows along the valley, to ~1e-7 relative in 30-40 steps;
    # every named mistake differs by far more. float32 is caught by dtype.
    tol = dict(rtol=1e-6, atol=1e-8 * max(1.0, float(np.max(np.abs(R)))))
    if res["dtype"]:
        if _close(G, R, 1e-4, 1e-7):
            raise Feedback(f"{label}: your updates are {res['dtype']}: "
                           f"compute in float64 (no float32 anywhere; "
                           f"the run agrees with torch only to float32 "
                           f"precision)")
    if kind == "adamw" and not res["dtype"] and finite == STEPS and \
            _float32_direction(G, _flat({k: v[None] for k, v in
                                         params0.items()})[0], hp):
        raise Feedback(f"{label}: your Adam direction is rounded to "
                       f"float32 (the updates are float64 only because "
                       f"the decay adds float64 values to it): compute in "
                       f"float64 (no float32 anywhere)")
    if finite < STEPS or not _close(G, R, **tol):
        # a run that blew up is compared on its finite steps
        n = finite
        found = []
        right = _flat(_np_run(kind, hp, params0, problem, STEPS))
        for msg, flags in variants:
            alt = _flat(_np_run(kind, hp, params0, problem, STEPS, **flags))
            if _close(alt[:max(n, 1)], right[:max(n, 1)], **tol):
                continue            # the same numbers here (e.g. wd = 0)
            if n and _close(G[:n], alt[:n], **tol) and msg not in found:
                found.append(msg)
        if found:
            raise Feedback(f"{label}: " + " Or: ".join(found))
        if finite < STEPS:
            raise Feedback(f"{label}: the params became inf or NaN at step "
                           f"t = {finite + 1}. Is t = 1 on the first update "
                           f"(count incremented before it is used)?")
        c = res["count"]
        if count and len(c) > 1 and np.all(c == c[0]):
            raise Feedback(f"{label}: the count in your state is "
                           f"{int(c[0])} after every update: increment "
                           f"count and return the new state.")
        if res["stale"]:
            raise Feedback(f"{label}: from step 2 on, your update returned "
                           f"the state it was given: return the new state "
                           f"(the updated buffers and count).")
        raise _first_diff(label, "params", got, ref, **tol)
    if res["dtype"]:
        raise Feedback(f"{label}: your updates are {res['dtype']}: compute "
                       f"in float64")
    for f, tf in zip(fields, tfields):
        have = res["state"].get(f)
        want = ref_state[tf]
        if have is None:
            raise Feedback(f"{label}: the state has no field {f!r} holding "
                           f"a dict of arrays shaped like params (use the "
                           f"named tuple of the setup cell)")
        # the state is compared at every step, a little more loosely
        # than the params: torch updates moments with lerp (other
        # rounding), and the valley amplifies rounding in the gradients
        scale = max(1.0, float(np.max(np.abs(_flat(want) if isinstance(
            want, dict) else want))))
        err = _first_diff(label, f"state.{f}", have, want, rtol=1e-6,
                          atol=1e-8 * scale)
        if err is not None:
            raise Feedback(f"{err} (torch's {tf})")
    if count:
        c = res["count"].astype(float)
        if not _close(c, ref_state["step"]):
            raise Feedback(f"{label}: params are right, but the count in "
                           f"your state after the first updates is "
                           f"{res['count'][:4].tolist()}, not [1, 2, 3, 4] "
                           f"(torch's step): increment count and return "
                           f"the new state.")


def _nu_name(torch_name):
    return "square_avg" if torch_name == "RMSprop" else "exp_avg_sq"


def _r(rng, lo, hi, nd=3):
    return round(float(rng.uniform(lo, hi)), nd)


SIGN = ("the sign is flipped: scale_by_lr returns -lr * u.", {"sign": True})
NO_WD = ("weight decay is missing: add_decayed_weights adds weight_decay * "
         "params[k] before the rest of the chain.", {"no_wd": True})


# -- 1. the mean of a moment --------------------------------------------------
def test_moment_mean_factor(S, rng):
    def reference(beta, t):
        # the unrolled recursion: E[m_t] / E[g] = sum_i (1 - beta) beta^(t-i)
        out = np.zeros(np.broadcast(beta, t).shape)
        for idx in np.ndindex(out.shape):
            bb = np.broadcast_to(beta, out.shape)[idx]
            tt = int(np.broadcast_to(t, out.shape)[idx])
            out[idx] = sum((1 - bb) * bb ** (tt - i)
                           for i in range(1, tt + 1))
        return out
    with hidden():
        beta = rng.uniform(0.5, 0.999, size=(4, 3))
        t = rng.integers(1, 60, size=(4, 3))
        with show(beta=beta, t=t):
            got = S.moment_mean_factor(beta, t)
            check_array("moment_mean_factor(beta, t)", got,
                        reference(beta, t), mistakes=[
                Mistake(beta ** t, "that is beta**t, the weight the zero "
                        "start keeps; the gradients' weights sum to 1 - "
                        "beta**t."),
                Mistake(1 / (1 - beta ** t), "that is the correction, "
                        "1 / c: return the factor c itself, E[m_t] = c "
                        "E[g]."),
                Mistake(1 - beta ** (t - 1), "off by one in the exponent: "
                        "m_t has t terms."),
                Mistake(np.broadcast_to(1 - beta, t.shape), "that is only "
                        "the weight of the newest gradient; sum all t "
                        "weights."),
            ])


# -- 2, 3, 5. SGD, momentum, Nesterov -----------------------------------------
def test_sgd(S, rng):
    with hidden():
        for lr, wd in [(0.01, 0.1), (_r(rng, 0.002, 0.01, 4),
                                     _r(rng, 0.05, 0.8))]:
            kw = dict(lr=lr, weight_decay=wd)
            _run_case(S, rng, "sgd", kw, "SGD", kw, "sgd", kw,
                      [SIGN, NO_WD], count=False)


MOMENTUM_MISTAKES = [
    ("the buffer is not started like torch's: b_1 = g_1 (no dampening on "
     "the first update, no zero buffer).", {"b0zero": True}),
    ("that is an average b = mu b + (1 - mu) g; torch's buffer is b = mu "
     "b + (1 - dampening) g, from b_1 = g_1.", {"ema": True}),
    SIGN, NO_WD]


def test_momentum(S, rng):
    with hidden():
        for mu, d, lr, wd in [(0.8, 0.3, 0.008, 0.2),
                              (_r(rng, 0.5, 0.9), _r(rng, 0.1, 0.6),
                               _r(rng, 0.002, 0.008, 4), _r(rng, 0.0, 0.5))]:
            kw = dict(lr=lr, momentum=mu, dampening=d, weight_decay=wd)
            _run_case(S, rng, "sgd", kw, "SGD", kw, "sgd", kw,
                      MOMENTUM_MISTAKES, fields=["trace"], count=False)


def test_lookahead_to_torch(S, rng):
    """The look-ahead form run here (NumPy, its own gradient at theta +
    mu v), mapped by the student's change of variables, vs torch's
    SGD(nesterov=True) run from phi_0 = theta_0."""
    with hidden():
        params0, problem = _problem(rng)
        lr, mu = _r(rng, 0.002, 0.005, 4), _r(rng, 0.6, 0.9)
        theta = {k: v.copy() for k, v in params0.items()}
        vel = {k: np.zeros_like(v) for k, v in params0.items()}
        ths, vs = [], []
        for _ in range(STEPS):
            g = _np_gradient(problem, {k: theta[k] + mu * vel[k]
                                       for k in KEYS})
            vel = {k: mu * vel[k] - lr * g[k] for k in KEYS}
            theta = {k: theta[k] + vel[k] for k in KEYS}
            ths.append(np.concatenate([theta[k].ravel() for k in KEYS]))
            vs.append(np.concatenate([vel[k].ravel() for k in KEYS]))
        ths, vs = np.array(ths), np.array(vs)
        ref, st = _torch_run("SGD", dict(lr=lr, momentum=mu, nesterov=True),
                             params0, problem, STEPS, ["momentum_buffer"])
        phi_ref = _flat(ref)
        b_ref = np.concatenate([st["momentum_buffer"][k].reshape(STEPS, -1)
                                for k in KEYS], axis=1)
        if not (_close(ths + mu * vs, phi_ref, 1e-9, 1e-12)
                and _close(-vs / lr, b_ref, 1e-7, 1e-9)):
            raise RuntimeError("grader bug: the look-ahead form is not "
                               "torch's Nesterov")
        out = S.lookahead_to_torch(ths, vs, lr, mu)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise Feedback("lookahead_to_torch must return a tuple "
                           "(phi, b)")
        label = (f"lookahead_to_torch on {STEPS} steps of the look-ahead "
                 f"form (lr={lr}, mu={mu}), against torch's SGD("
                 f"nesterov=True)")
        check_array(f"{label}: phi", out[0], phi_ref, mistakes=[
            Mistake(ths, "that is theta_t: torch's parameters are the "
                    "look-ahead point phi_t = theta_t + mu v_t."),
            Mistake(ths - mu * vs, "the look-ahead point is theta_t + mu "
                    "v_t (one step of momentum ahead)."),
        ])
        check_array(f"{label}: b", out[1], b_ref, mistakes=[
            Mistake(vs / lr, "the sign: v_t steps downhill, torch's buffer "
                    "accumulates gradients (b_t = -v_t / lr)."),
            Mistake(-vs, "torch's buffer holds gradients: divide by lr."),
            Mistake(vs, "torch's buffer holds gradients, b_t = -v_t / lr."),
        ])


def test_nesterov(S, rng):
    with hidden():
        for mu, lr, wd in [(0.9, 0.004, 0.0),
                           (_r(rng, 0.5, 0.9), _r(rng, 0.002, 0.008, 4),
                            _r(rng, 0.05, 0.5))]:
            kw = dict(lr=lr, momentum=mu, weight_decay=wd, nesterov=True)
            _run_case(S, rng, "sgd", kw, "SGD", kw, "sgd", kw, [
                ("that is the heavy ball's step (the buffer alone); "
                 "Nesterov's direction is g + mu * b_t.", {"heavy": True}),
                *MOMENTUM_MISTAKES], fields=["trace"], count=False)


# -- 6-8. AdaGrad, RMSprop, Adam ----------------------------------------------
EPS_IN = ("eps is inside the square root; torch divides by sqrt(...) + "
          "eps.", {"eps_in": True})


def test_adagrad(S, rng):
    with hidden():
        for lr, eps, wd, s0 in [(0.1, 1e-10, 0.0, 0.0),
                                (_r(rng, 0.05, 0.3), 0.05,
                                 _r(rng, 0.05, 0.5), _r(rng, 0.1, 1.0))]:
            kw = dict(lr=lr, eps=eps, weight_decay=wd,
                      initial_accumulator_value=s0)
            hp = dict(kw, init_acc=s0)
            _run_case(S, rng, "adagrad", kw, "Adagrad", kw, "adagrad", hp,
                      [EPS_IN, SIGN, NO_WD], fields=["sum_of_squares"])


def test_rmsprop(S, rng):
    with hidden():
        for lr, al, eps, wd in [(0.01, 0.99, 1e-8, 0.0),
                                (_r(rng, 0.005, 0.02, 4), _r(rng, 0.8, 0.95),
                                 0.05, _r(rng, 0.05, 0.5))]:
            kw = dict(lr=lr, alpha=al, eps=eps, weight_decay=wd)
            _run_case(S, rng, "rmsprop", kw, "RMSprop", kw, "rmsprop", kw, [
                EPS_IN, SIGN, NO_WD,
                ("the weights are swapped: v = alpha v + (1 - alpha) g * g.",
                 {"swap": True}),
                ("the square is per coordinate: v = alpha v + (1 - alpha) "
                 "g * g elementwise, not the sum over the array.",
                 {"sum_sq": True})], fields=["nu"])


ADAM_MISTAKES = [
    ("missing bias correction: divide m_t by 1 - beta1**t and v_t by 1 - "
     "beta2**t.", {"no_bias": True}),
    EPS_IN, SIGN,
    ("t is not counted: the bias correction uses t = 1 at every update "
     "(increment count and return the new state).", {"count_stuck": True}),
]


def test_adam(S, rng):
    with hidden():
        for lr, betas, eps, wd in [
                (0.02, (0.9, 0.999), 1e-8, 0.0),
                (_r(rng, 0.01, 0.05), (_r(rng, 0.7, 0.9), _r(rng, 0.9, 0.99)),
                 0.01, _r(rng, 0.1, 0.5))]:
            kw = dict(lr=lr, betas=betas, eps=eps, weight_decay=wd)
            _run_case(S, rng, "adam", kw, "Adam", kw, "adam", kw, [
                *ADAM_MISTAKES, NO_WD,
                ("torch's Adam couples weight_decay (L2 added to the "
                 "gradient, before the Adam block); decoupled decay is "
                 "AdamW.", {"decoupled": True})],
                fields=["mu", "nu"])


# -- 9. L2 inside Adam --------------------------------------------------------
def test_effective_decay(S, rng):
    with hidden():
        v_hat = rng.uniform(1e-4, 4.0, size=(3, 4)) ** 2
        lr, wd, eps = _r(rng, 0.001, 0.05, 4), _r(rng, 0.01, 0.5), 1e-3
        theta = rng.normal(size=v_hat.shape)
        g = rng.normal(size=v_hat.shape)

        def adam_step(th, lam, decoupled):
            # beta1 = 0, v_hat frozen: one Adam(W) update of theta
            if decoupled:
                return th - lr * lam * th - lr * g / (np.sqrt(v_hat) + eps)
            return th - lr * (g + lam * th) / (np.sqrt(v_hat) + eps)
        for decoupled in (False, True):
            # the decay r: the L2/decay part of the step is -r * theta
            ref = (adam_step(theta, 0.0, decoupled)
                   - adam_step(theta, wd, decoupled)) / theta
            with show(v_hat=v_hat, lr=lr, weight_decay=wd, eps=eps,
                      decoupled=decoupled):
                got = S.effective_decay(v_hat, lr, wd, eps,
                                        decoupled=decoupled)
                if decoupled:
                    named = [Mistake(lr * wd / (np.sqrt(v_hat) + eps),
                                     "decoupled decay is applied beside "
                                     "the Adam step, not divided by "
                                     "sqrt(v_hat) + eps.")]
                else:
                    named = [Mistake(np.full(v_hat.shape, lr * wd),
                                     "that is AdamW's decoupled decay lr * "
                                     "lambda; coupled L2 goes through the "
                                     "preconditioner."),
                             Mistake(wd / (np.sqrt(v_hat) + eps), "the "
                                     "decay is scaled by the learning "
                                     "rate."),
                             Mistake(lr * wd / np.sqrt(v_hat + eps), "eps "
                                     "is outside the square root in "
                                     "Adam."),
                             Mistake(lr * wd * np.sqrt(v_hat), "the "
                                     "preconditioner divides by "
                                     "sqrt(v_hat) + eps.")]
                check_array(f"effective_decay(..., decoupled={decoupled})",
                            got, ref, rtol=1e-6, mistakes=named)


# -- 10. AdamW ----------------------------------------------------------------
def test_adamw(S, rng):
    with hidden():
        for lr, betas, eps, wd in [
                (0.02, (0.9, 0.999), 1e-8, 0.1),
                (_r(rng, 0.01, 0.05), (_r(rng, 0.7, 0.9), _r(rng, 0.9, 0.99)),
                 0.01, _r(rng, 0.2, 0.8))]:
            kw = dict(lr=lr, betas=betas, eps=eps, weight_decay=wd)
            _run_case(S, rng, "adamw", kw, "AdamW", kw, "adamw", kw, [
                ("coupled where it should be decoupled: AdamW adds "
                 "weight_decay * theta after the Adam block, not before "
                 "it.", {"coupled": True}),
                ("the decay must be scaled by the learning rate: put "
                 "add_decayed_weights before scale_by_lr.",
                 {"wd_no_lr": True}),
                ("add_decayed_weights comes after scale_by_adam but before "
                 "scale_by_lr: the decay is scaled by -lr with the Adam "
                 "direction.", {"decay_after_lr": True}),
                ("weight decay is missing.", {"no_wd": True}),
                *ADAM_MISTAKES], fields=["mu", "nu"])


# -- 11. NAdam ----------------------------------------------------------------
def _unrolled_factor(mu):
    """E[m_t] / E[g] for m_t = mu_t m_(t-1) + (1 - mu_t) g_t, m_0 = 0: the
    weights of g_1..g_t summed, term by term (not the telescoped sum)."""
    out = np.zeros(len(mu))
    for t in range(1, len(mu) + 1):
        total = 0.0
        for i in range(1, t + 1):
            w = 1 - mu[i - 1]
            for j in range(i + 1, t + 1):
                w *= mu[j - 1]
            total += w
        out[t - 1] = total
    return out


def _scheduled_factor_mistakes(mu):
    t = np.arange(1, len(mu) + 1)
    prod = np.cumprod(mu)
    return [
        Mistake(prod, "that is the product mu_1 ... mu_t, the weight the "
                "zero start keeps; the weights of the gradients sum to 1 "
                "minus it."),
        Mistake(1 / (1 - prod), "that is the correction 1 / c_t: return "
                "the factor c_t itself, E[m_t] = c_t E[g]."),
        Mistake(1 - mu ** t, "that is question 1's factor with the current "
                "momentum frozen, 1 - mu_t**t; with a schedule each step "
                "has its own momentum: the weights telescope to 1 - mu_1 "
                "... mu_t."),
        Mistake(1 - np.concatenate([[1.0], prod[:-1]]), "off by one: c_t "
                "includes mu_t (m_t has t terms, the first c_1 = 1 - "
                "mu_1)."),
        Mistake(1 - mu, "that is only the weight of the newest gradient; "
                "sum the weights of all t gradients."),
    ]


def test_scheduled_moment_factor(S, rng):
    mu = np.array([0.9, 0.8, 0.5])
    with show(mu=mu):
        check_array("scheduled_moment_factor([0.9, 0.8, 0.5])",
                    S.scheduled_moment_factor(mu), _unrolled_factor(mu),
                    mistakes=_scheduled_factor_mistakes(mu))
    with hidden():
        b1, psi = _r(rng, 0.8, 0.95), _r(rng, 0.02, 0.2)
        k = np.arange(1, int(rng.integers(12, 25)) + 1)
        cases = [b1 * (1 - 0.5 * 0.96 ** (k * psi)),        # NAdam's
                 rng.uniform(0.3, 0.99, size=int(rng.integers(5, 12))),
                 np.full(int(rng.integers(6, 15)), _r(rng, 0.5, 0.99))]
        for mu in cases:
            with show(mu=mu):
                check_array(f"scheduled_moment_factor(mu) for {len(mu)} "
                            f"momenta", S.scheduled_moment_factor(mu),
                            _unrolled_factor(mu),
                            mistakes=_scheduled_factor_mistakes(mu))


def test_nadam(S, rng):
    with hidden():
        for lr, betas, eps, wd, psi in [
                (0.02, (0.9, 0.999), 1e-8, 0.0, 4e-3),
                (_r(rng, 0.01, 0.04), (_r(rng, 0.8, 0.95),
                                       _r(rng, 0.9, 0.99)), 0.01,
                 _r(rng, 0.1, 0.5), _r(rng, 0.02, 0.2))]:
            kw = dict(lr=lr, betas=betas, eps=eps, weight_decay=wd,
                      momentum_decay=psi)
            hp = dict(kw, psi=psi)
            _run_case(S, rng, "nadam", kw, "NAdam", kw, "nadam", hp, [
                ("the momentum schedule is missing: mu_t = beta1 (1 - 0.5 "
                 "* 0.96^(t psi)), not beta1.", {"mu_const": True}),
                ("the second term uses mu_(t+1), the next step's momentum, "
                 "not mu_t.", {"mu_same": True}),
                ("the first term divides by 1 - P_t, the product of all "
                 "mu_i so far (mu_product), not by 1 - mu_t.",
                 {"no_prod": True}),
                EPS_IN, SIGN, NO_WD,
                ("t is not counted (increment count and return the new "
                 "state).", {"count_stuck": True})],
                fields=["mu", "nu", "mu_product"])


# -- 12, 13. schedules --------------------------------------------------------
SCHEDULE_DRIVER = "lambda fn, K, kw: np.array([float(fn(k, **kw)) " \
    "for k in range(K)])"


def _schedule_values(S, name, K, **kw):
    vals = S.run(Code(SCHEDULE_DRIVER), S.function(name), K, kw)
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


def _cos(k, T, hi, lo):
    return lo + (hi - lo) * (1 + np.cos(np.pi * k / T)) / 2


def test_warmup_cosine(S, rng):
    import warnings
    with hidden():
        for lr, W, T, s0, lo in [
                (0.1, 5, 30, 1e-3, 0.0),
                (_r(rng, 0.5, 2.0), int(rng.integers(3, 12)),
                 int(rng.integers(20, 50)), _r(rng, 0.01, 0.5),
                 _r(rng, 0.0, 0.05))]:
            K = T + 5
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = _torch_schedule(lambda o: lr_scheduler.SequentialLR(
                    o, [lr_scheduler.LinearLR(o, s0, 1.0, total_iters=W),
                        lr_scheduler.CosineAnnealingLR(o, T - W, lo)],
                    milestones=[W]), lr, K)
            kw = dict(lr=lr, warmup_steps=W, total_steps=T, start_factor=s0,
                      eta_min=lo)
            got = _schedule_values(S, "warmup_cosine", K, **kw)
            k = np.arange(K)
            warm = lr * (s0 + (1 - s0) * k / W)
            check_array(f"warmup_cosine({', '.join(f'{a}={b}' for a, b in kw.items())}) "
                        f"for k = 0..{K - 1}", got, ref, rtol=1e-9,
                        atol=1e-12, mistakes=[
                Mistake(np.where(k < W, lr * (s0 + (1 - s0) * k / (W - 1)),
                                 _cos(k - W, T - W, lr, lo)),
                        "the warm-up reaches lr one step early: the factor "
                        "is start_factor + (1 - start_factor) k / W."),
                Mistake(np.where(k < W, warm, _cos(k, T, lr, lo)),
                        "the cosine restarts at the milestone: use k - W "
                        "(and T - W steps), not k."),
                Mistake(np.where(k < W, warm, _cos(k - W, T, lr, lo)),
                        "the cosine runs for T - W steps "
                        "(CosineAnnealingLR's T_max = total - warm-up)."),
                Mistake(np.where(k < W, lr * k / W, _cos(k - W, T - W, lr,
                                                          lo)),
                        "the warm-up starts at start_factor * lr, not 0."),
            ])


def test_one_cycle(S, rng):
    with hidden():
        for mx, T, pct, div, fdiv in [
                (0.1, 50, 0.3, 25.0, 1e4),
                (_r(rng, 0.5, 3.0), int(rng.integers(30, 80)),
                 _r(rng, 0.2, 0.5, 2), _r(rng, 5.0, 30.0, 1),
                 _r(rng, 10.0, 100.0, 1))]:
            ref = _torch_schedule(lambda o: lr_scheduler.OneCycleLR(
                o, max_lr=mx, total_steps=T, pct_start=pct,
                anneal_strategy="cos", cycle_momentum=False,
                div_factor=div, final_div_factor=fdiv, three_phase=False),
                mx, T)
            kw = dict(max_lr=mx, total_steps=T, pct_start=pct,
                      div_factor=div, final_div_factor=fdiv)
            got = _schedule_values(S, "one_cycle", T, **kw)
            k = np.arange(T, dtype=float)
            a0 = mx / div

            def two(k1, end, curve):
                return np.where(k <= k1, curve(a0, mx, k / k1),
                                curve(mx, end, (k - k1) / (T - 1 - k1)))

            def cosc(s, e, p):
                return e + (s - e) / 2 * (1 + np.cos(np.pi * p))

            def lin(s, e, p):
                return s + (e - s) * p
            check_array(f"one_cycle({', '.join(f'{a}={b}' for a, b in kw.items())}) "
                        f"for k = 0..{T - 1}", got, ref, rtol=1e-9,
                        atol=1e-12, mistakes=[
                Mistake(two(pct * T - 1, mx / fdiv, cosc), "the final rate "
                        "is max_lr / div_factor / final_div_factor (the "
                        "initial rate divided)."),
                Mistake(two(pct * T, a0 / fdiv, cosc), "the peak is at "
                        "step pct_start * total_steps - 1 (torch's "
                        "convention)."),
                Mistake(two(pct * T - 1, a0 / fdiv, lin), "each phase is a "
                        "half cosine (anneal_strategy='cos'), not a line."),
            ])


# -- 14. Newton's step --------------------------------------------------------
def test_newton_step(S, rng):
    with hidden():
        P = int(rng.integers(4, 7))
        A = rng.normal(size=(2 * P, P))
        c = rng.normal(size=2 * P)
        x = torch.tensor(0.3 * rng.normal(size=P), dtype=torch.float64)

        def J(x):
            # a log-sum-exp of affine maps plus a quartic: not quadratic
            return torch.logsumexp(torch.from_numpy(A) @ x +
                                   torch.from_numpy(c), 0) + \
                0.25 * (x ** 4).sum() + 0.5 * (x ** 2).sum()
        xg = x.clone().requires_grad_(True)
        J(xg).backward()
        g = xg.grad.numpy().copy()
        H = torch.autograd.functional.hessian(J, x).numpy()
        H = 0.5 * (H + H.T)
        ref = -np.linalg.solve(H, g)
        with show(g=g, H=H):
            got = S.newton_step(g, H)
            check_array("newton_step(g, H)", got, ref, mistakes=[
                Mistake(-ref, "the sign: the step solves H d = -g."),
                Mistake(-H @ g, "that is -H g: the step uses H^-1, i.e. "
                        "solves H d = -g."),
                Mistake(-g / np.diag(H), "that uses only the diagonal of "
                        "H; solve the full system H d = -g."),
                Mistake(-g, "that is the gradient step; Newton's step "
                        "solves H d = -g."),
            ], shape_hint="Return a flat vector of shape (P,).")


# -- 15. backtracking ---------------------------------------------------------
ROSEN_F = "lambda x: float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)"


def _rosen(x):
    return float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


def _rosen_grad(x):
    return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2),
                     200 * (x[1] - x[0] ** 2)])


def _backtrack(f, x, fx, g, d, alpha0, shrink, c, sign=1.0, reverse=False,
               fixed=None):
    slope = float(g @ d)
    a = alpha0
    for _ in range(60):
        ok = f(x + a * d) <= fx + sign * c * a * slope
        if ok != reverse:
            return a
        a = a * (fixed or shrink)
    return a


def test_backtracking(S, rng):
    with hidden():
        cases = 0
        for _ in range(200):
            x = rng.uniform(-1.5, 1.5, size=2)
            g = _rosen_grad(x)
            newton = rng.random() < 0.5
            d = -g / np.linalg.norm(g) * _r(rng, 0.5, 2.0) if not newton \
                else -g
            a0, shrink, c = _r(rng, 0.5, 2.0), _r(rng, 0.2, 0.4), \
                _r(rng, 0.2, 0.6)
            fx = _rosen(x)
            ref = _backtrack(_rosen, x, fx, g, d, a0, shrink, c)
            mist = {
                "the inequality is the wrong way round: accept alpha once "
                "f(x + alpha d) <= f(x) + c alpha g^T d.":
                    _backtrack(_rosen, x, fx, g, d, a0, shrink, c,
                               reverse=True),
                "multiply alpha by shrink (the argument), not by 0.5.":
                    _backtrack(_rosen, x, fx, g, d, a0, shrink, c, fixed=0.5),
                "the sufficient decrease is c alpha g^T d (negative along a "
                "descent direction): check the sign of the slope term.":
                    _backtrack(_rosen, x, fx, g, d, a0, shrink, c, sign=-1),
                "the rule asks for a sufficient decrease, c alpha g^T d, "
                "not just f(x + alpha d) <= f(x).":
                    _backtrack(_rosen, x, fx, g, d, a0, shrink, 0.0),
            }
            if ref == a0 or any(abs(v - ref) <= 1e-12 for v in
                                mist.values()):
                continue
            with show(x=x, d=d, alpha0=a0, shrink=shrink, c=c):
                got = S.backtracking(Code(ROSEN_F), x, fx, g, d, alpha0=a0,
                                     shrink=shrink, c=c)
                check_array("backtracking on the Rosenbrock function", got,
                            ref, mistakes=[Mistake(v, m)
                                           for m, v in mist.items()])
            cases += 1
            if cases == 3:
                break
        if cases < 3:
            raise RuntimeError("grader bug: no distinguishing line-search "
                               "case found")
