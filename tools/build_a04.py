"""Build the source notebook of assignment 4 (the optimizer as a mapping).

    python tools/build_a04.py      # writes solutions/a04_optimizers/...

then ``make release``. The notebook is the source of truth once written;
this script is how it was written (nbgrader metadata via tools.nbbuild).
"""
from pathlib import Path

import nbformat

from nbbuild import _src, answer, md, setup, tests, write

OUT = Path(__file__).resolve().parent.parent / "solutions" / \
    "a04_optimizers" / "a04_optimizers.ipynb"

CELLS = [
md(r"""
# Assignment 4 — The optimizer as a mapping

An optimizer is a map of gradients: a pair of pure functions

```python
state = opt.init(params)
updates, state = opt.update(grads, state, params)
params = apply_updates(params, updates)        # theta + u, per key
```

(`GradientTransformation(init, update)` from `dlopt.optim`, as in the
chapter *Optimizers*). In this notebook you write the **building blocks**
of chapter 5 as such pairs (the momentum trace, the per-coordinate
scalings of AdaGrad and RMSprop, Adam's bias-corrected moments, NAdam's
scheduled momentum, weight decay) and **compose** SGD with momentum,
Nesterov, AdaGrad, RMSprop, Adam, AdamW and NAdam from them with the
course's `chain`. Before some blocks you **derive** the formula they
rest on; the derivation is graded too. Then two schedules (warm-up then
cosine, one-cycle) as maps of the step number, and chapter 10's Newton
step and backtracking line search.

**Conventions.** `params`, `grads` and `updates` are flat dicts
`{name: float64 array}` with several arrays of different shapes; a
block's state is one of the named tuples of the setup cell (or `()` for
a block without state); nothing is changed in place: return new dicts,
new arrays and a new state. `count` is the number of updates made,
incremented **before** it is used ($t = 1$ on the first update).
`updates` carry their sign: `scale_by_lr(lr)` turns a direction `u`
into `-lr * u`, and `chain(a, b, c)` applies `a`, then `b`, then `c`.

**How to work.** Replace every `raise NotImplementedError()` with NumPy
code. `torch`, `dlopt.optim.transform`, `dlopt.optim.alias`,
`dlopt.schedules` and `dlopt.second_order` (the course's reference
implementations) are not available while grading; `from dlopt.optim
import GradientTransformation, chain, apply_updates` is. Each test cell
checks a step or two by hand. The autograder then runs your optimizers
from outside the notebook on fresh random problems (a logistic
regression coupled to a Rosenbrock valley, three parameter arrays) for
many steps with fresh hyperparameters, and compares the parameters and
the state (momentum buffer, sums and averages of squares, moments,
`count`) at every step with `torch.optim` in float64.

| question | points |
|---|---|
| 1. derive: the mean of a moment that starts at zero | 1 |
| 2. SGD with weight decay (`scale_by_lr`, `add_decayed_weights`) | 1 |
| 3. momentum: the `trace` block | 2 |
| 4. derive: Nesterov's look-ahead in torch's buffer form | 1 |
| 5. Nesterov momentum | 1 |
| 6. AdaGrad | 1 |
| 7. RMSprop | 1 |
| 8. Adam | 2 |
| 9. derive: L2 inside Adam is not weight decay | 1 |
| 10. AdamW | 1 |
| 11. NAdam: derive its bias correction under the momentum schedule; compose it | 1 + 2 |
| 12. warm-up then cosine | 1 |
| 13. one-cycle | 1 |
| 14. derive: Newton's step | 1 |
| 15. backtracking line search | 1 |
""", "intro"),
setup("setup", r'''
import numpy as np
from typing import NamedTuple

from dlopt.grading import Feedback, Mistake, check_array
from dlopt.optim import GradientTransformation, apply_updates, chain


# The states of the blocks (use these; the grader reads them by name).
class TraceState(NamedTuple):      # momentum (torch: momentum_buffer)
    count: int
    trace: dict


class RssState(NamedTuple):        # AdaGrad (torch: sum)
    count: int
    sum_of_squares: dict


class RmsState(NamedTuple):        # RMSprop (torch: square_avg)
    count: int
    nu: dict


class AdamState(NamedTuple):       # Adam (torch: exp_avg, exp_avg_sq)
    count: int
    mu: dict
    nu: dict


class NadamState(NamedTuple):      # NAdam (torch: ..., mu_product)
    count: int
    mu_product: float
    mu: dict
    nu: dict


def run(opt, params, grads_list):
    """Apply opt to params with the given gradients (a list of dicts);
    returns (params, state) after the last update."""
    state = opt.init(params)
    for grads in grads_list:
        updates, state = opt.update(grads, state, params)
        params = apply_updates(params, updates)
    return params, state
'''),
md(r"""
## 1. Derive: the mean of a moment that starts at zero (1 point)

Adam's moments are exponential averages that start at zero,
$\mathbf{m}_0 = 0$, $\mathbf{m}_t = \beta\,\mathbf{m}_{t-1} +
(1-\beta)\,\mathbf{g}_t$. Unroll the recursion: $\mathbf{m}_t$ is a
weighted sum of $\mathbf{g}_1, \dots, \mathbf{g}_t$. If every
$\mathbf{g}_i$ has the same mean $\mathbb{E}[\mathbf{g}]$, then
$\mathbb{E}[\mathbf{m}_t] = c(\beta, t)\,\mathbb{E}[\mathbf{g}]$.
Find $c(\beta, t)$ (sum the geometric series) and return it; $\beta$ and
$t$ may be arrays (broadcast them). Dividing by this factor is Adam's
*bias correction*.
""", "q1"),
answer("moment_mean_factor", r'''
def moment_mean_factor(beta, t):
    """c(beta, t) with E[m_t] = c * E[g] for m_0 = 0 (beta, t broadcast)."""
    ### BEGIN SOLUTION
    return 1 - np.asarray(beta, dtype=float) ** t
    ### END SOLUTION
'''),
tests("test_moment_mean_factor", 1, r'''
# Visible test: m_1 = (1 - beta) g_1, m_2 = beta (1 - beta) g_1 + (1 - beta) g_2.
got = moment_mean_factor(np.array([0.9, 0.9, 0.5]), np.array([1, 2, 1]))
check_array("moment_mean_factor(beta, t)", got, [0.1, 0.19, 0.5], mistakes=[
    Mistake([0.9, 0.81, 0.5], "that is beta**t, the weight the zero start "
            "keeps; the weights of the gradients sum to 1 - beta**t."),
])
# Hidden checks (fresh beta and t) run in the grader.
'''),
md(r"""
## 2. SGD with weight decay (1 point)

Write the two stateless blocks (their state is `()`):

* `scale_by_lr(lr)`: $\mathbf{u} \mapsto -\alpha\,\mathbf{u}$;
* `add_decayed_weights(weight_decay)`: $\mathbf{u} \mapsto \mathbf{u} +
  \lambda'\theta$ (it needs `params`, the third argument of `update`;
  $\lambda' = \lambda/N$ is the book's weight decay per step).

`torch.optim.SGD` with `weight_decay` $= \lambda'$ is the chain of the two: the L2
term is added to the gradient (*coupled*), then the step is taken. You
write the composition `sgd` in question 3, with `trace`; with
`momentum=0` it is exactly this chain (graded by the first test below
it).
""", "q2"),
answer("blocks_sgd", r'''
def scale_by_lr(lr):
    """u -> -lr * u, per key. State: ()."""
    ### BEGIN SOLUTION
    def init(params):
        return ()

    def update(grads, state, params=None):
        return {k: -lr * u for k, u in grads.items()}, state
    return GradientTransformation(init, update)
    ### END SOLUTION


def add_decayed_weights(weight_decay):
    """u -> u + weight_decay * theta, per key. State: ()."""
    ### BEGIN SOLUTION
    def init(params):
        return ()

    def update(grads, state, params=None):
        return {k: u + weight_decay * params[k]
                for k, u in grads.items()}, state
    return GradientTransformation(init, update)
    ### END SOLUTION
'''),
md(r"""
## 3. Momentum: the `trace` block (2 points)

`torch.optim.SGD(momentum=mu, dampening=d)` keeps a buffer per array
(`TraceState.trace`, torch's `momentum_buffer`). **On the first update
the buffer is the gradient itself**, $\mathbf{b}_1 = \mathbf{g}_1$ (not
$(1-d)\,\mathbf{g}_1$: torch's convention); after that

$$\mathbf{b}_t = \mu\,\mathbf{b}_{t-1} + (1 - d)\,\mathbf{g}_t .$$

The block outputs $\mathbf{b}_t$, or with `nesterov=True` the direction
of question 5, $\mathbf{g}_t + \mu\,\mathbf{b}_t$. Then compose SGD:
`chain(add_decayed_weights(weight_decay), trace(...), scale_by_lr(lr))`,
leaving out the blocks that are not needed.
""", "q3"),
answer("trace", r'''
def trace(mu, dampening=0.0, nesterov=False):
    """torch's momentum buffer. State: TraceState(count, trace)."""
    ### BEGIN SOLUTION
    def init(params):
        return TraceState(0, {k: np.zeros_like(p) for k, p in params.items()})

    def update(grads, state, params=None):
        t = state.count + 1
        out, buf = {}, {}
        for k, g in grads.items():
            b = g.copy() if t == 1 else mu * state.trace[k] + (1 - dampening) * g
            buf[k] = b
            out[k] = g + mu * b if nesterov else b
        return out, TraceState(t, buf)
    return GradientTransformation(init, update)
    ### END SOLUTION


def sgd(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD as a chain of your blocks."""
    ### BEGIN SOLUTION
    blocks = []
    if weight_decay:
        blocks.append(add_decayed_weights(weight_decay))
    if momentum:
        blocks.append(trace(momentum, dampening, nesterov))
    blocks.append(scale_by_lr(lr))
    return chain(*blocks)
    ### END SOLUTION
'''),
tests("test_sgd", 1, r'''
# Visible test: one step, g + lambda theta = [1, -0.5].
params = {"w": np.array([1.0, -2.0])}
new, _ = run(sgd(0.1, weight_decay=0.5), params, [{"w": np.array([0.5, 0.5])}])
check_array("w after one SGD step", new["w"], [0.9, -1.95], mistakes=[
    Mistake([1.1, -2.05], "the sign is flipped: scale_by_lr returns -lr * u."),
    Mistake([0.95, -2.05], "weight decay is missing: add weight_decay * "
            "params[k] to the gradient."),
])
# Hidden checks (torch.optim.SGD, many steps) run in the grader.
'''),
tests("test_momentum", 2, r'''
# Visible test: two steps, b1 = 1, b2 = 0.9 * 1 + 0.5 * 1 = 1.4.
params = {"w": np.array([0.0])}
one = {"w": np.array([1.0])}
new, state = run(sgd(1.0, momentum=0.9, dampening=0.5), params, [one, one])
check_array("w after two momentum steps", new["w"], [-2.4], mistakes=[
    Mistake([-1.45], "the buffer is not started like torch's: b_1 = g_1 "
            "(no dampening on the first update, no zero buffer)."),
    Mistake([-0.29], "that is an average b = mu b + (1 - mu) g; torch's "
            "buffer is b = mu b + (1 - dampening) g, from b_1 = g_1."),
    Mistake([2.4], "the sign is flipped."),
])
# Hidden checks (torch.optim.SGD, params and momentum_buffer) run in the grader.
'''),
md(r"""
## 4. Derive: Nesterov's look-ahead in torch's buffer form (1 point)

Nesterov's method, as Sutskever et al. write it, evaluates the gradient
at a *look-ahead* point:

$$\mathbf{v}_t = \mu\,\mathbf{v}_{t-1} - \alpha\,\nabla J(\theta_{t-1} +
\mu\,\mathbf{v}_{t-1}), \qquad \theta_t = \theta_{t-1} + \mathbf{v}_t,
\qquad \mathbf{v}_0 = 0 .$$

Torch never evaluates a gradient anywhere but at its own parameters.
Change variables to the look-ahead point $\varphi_t = \theta_t +
\mu\,\mathbf{v}_t$ and a buffer $\mathbf{b}_t$ proportional to
$\mathbf{v}_t$, and show that with $\mathbf{g}_t = \nabla J(\varphi_{t-1})$
the method becomes $\mathbf{b}_t = \mu\,\mathbf{b}_{t-1} + \mathbf{g}_t$,
$\varphi_t = \varphi_{t-1} - \alpha\,(\mathbf{g}_t + \mu\,\mathbf{b}_t)$:
torch's `SGD(nesterov=True)`, whose parameters are $\varphi_t$ and whose
`momentum_buffer` is $\mathbf{b}_t$. Return the change of variables:
from $(\theta_t, \mathbf{v}_t)$ of the look-ahead form, torch's
$(\varphi_t, \mathbf{b}_t)$. (The grader runs the look-ahead form and
compares your map of it with torch, step by step.)
""", "q4"),
answer("lookahead_to_torch", r'''
def lookahead_to_torch(theta, v, lr, mu):
    """(theta_t, v_t) of the look-ahead form -> (phi_t, b_t) of torch's.
    theta, v: arrays of one shape. Returns a tuple of two arrays."""
    ### BEGIN SOLUTION
    return theta + mu * v, -v / lr
    ### END SOLUTION
'''),
tests("test_lookahead_to_torch", 1, r'''
# Visible test: one step from theta_0 = 0 with g = 1, lr = 0.1, mu = 0.9:
# v_1 = -0.1, theta_1 = -0.1; torch: b_1 = 1, phi_1 = -0.1 * (1 + 0.9).
phi, b = lookahead_to_torch(np.array([-0.1]), np.array([-0.1]), 0.1, 0.9)
check_array("phi_1", phi, [-0.19], mistakes=[
    Mistake([-0.1], "that is theta_t: torch's parameters are the look-ahead "
            "point phi_t = theta_t + mu v_t."),
])
check_array("b_1", b, [1.0], mistakes=[
    Mistake([-1.0], "the sign: v_t steps downhill, torch's buffer "
            "accumulates gradients (b_t = -v_t / lr)."),
    Mistake([-0.1], "that is v_t itself: torch's buffer holds gradients, "
            "b_t = -v_t / lr."),
])
# Hidden checks (the look-ahead form run for many steps vs torch) run in the grader.
'''),
md(r"""
## 5. Nesterov momentum (1 point)

Your `trace(mu, nesterov=True)` outputs $\mathbf{g}_t + \mu\,\mathbf{b}_t$
with the *new* buffer, so `sgd(lr, momentum=mu, nesterov=True)` is
already torch's Nesterov. This cell grades it on its own.
""", "q5"),
tests("test_nesterov", 1, r'''
# Visible test: the first step is lr * (1 + mu) * g.
new, _ = run(sgd(0.1, momentum=0.9, nesterov=True), {"w": np.array([0.0])},
             [{"w": np.array([1.0])}])
check_array("w after one Nesterov step", new["w"], [-0.19], mistakes=[
    Mistake([-0.1], "that is the heavy ball's step (the buffer alone); "
            "Nesterov's direction is g + mu * b_t."),
])
# Hidden checks (torch.optim.SGD(nesterov=True)) run in the grader.
'''),
md(r"""
## 6–8. AdaGrad, RMSprop, Adam (1 + 1 + 2 points)

Three blocks that scale each coordinate by a root of accumulated
squares, with $\varepsilon$ **outside** the square root (torch's
convention), and their compositions with torch's coupled `weight_decay`
(`add_decayed_weights` *before* the block):

* `scale_by_rss(eps, initial_accumulator_value)` (AdaGrad, `RssState`):
  $\mathbf{s}_t = \mathbf{s}_{t-1} + \mathbf{g}_t\odot\mathbf{g}_t$
  ($\mathbf{s}_0$ = the initial value), output
  $\mathbf{g}_t / (\sqrt{\mathbf{s}_t} + \varepsilon)$;
* `scale_by_rms(alpha, eps)` (RMSprop, `RmsState`; `alpha` is torch's
  name for the decay): $\mathbf{v}_t = \alpha\,\mathbf{v}_{t-1} +
  (1-\alpha)\,\mathbf{g}_t\odot\mathbf{g}_t$ from zero, no bias
  correction, output $\mathbf{g}_t / (\sqrt{\mathbf{v}_t} + \varepsilon)$;
* `scale_by_adam(b1, b2, eps)` (`AdamState`): both moments from zero,
  each divided by your factor of question 1,
  $\hat{\mathbf{m}}_t = \mathbf{m}_t / c(\beta_1, t)$,
  $\hat{\mathbf{v}}_t = \mathbf{v}_t / c(\beta_2, t)$, output
  $\hat{\mathbf{m}}_t / (\sqrt{\hat{\mathbf{v}}_t} + \varepsilon)$.
""", "q6"),
answer("blocks_adaptive", r'''
def scale_by_rss(eps=1e-10, initial_accumulator_value=0.0):
    """AdaGrad's scaling. State: RssState(count, sum_of_squares)."""
    ### BEGIN SOLUTION
    def init(params):
        return RssState(0, {k: np.zeros_like(p) + initial_accumulator_value
                            for k, p in params.items()})

    def update(grads, state, params=None):
        s = {k: state.sum_of_squares[k] + g * g for k, g in grads.items()}
        out = {k: g / (np.sqrt(s[k]) + eps) for k, g in grads.items()}
        return out, RssState(state.count + 1, s)
    return GradientTransformation(init, update)
    ### END SOLUTION


def scale_by_rms(alpha=0.99, eps=1e-8):
    """RMSprop's scaling. State: RmsState(count, nu)."""
    ### BEGIN SOLUTION
    def init(params):
        return RmsState(0, {k: np.zeros_like(p) for k, p in params.items()})

    def update(grads, state, params=None):
        v = {k: alpha * state.nu[k] + (1 - alpha) * g * g
             for k, g in grads.items()}
        out = {k: g / (np.sqrt(v[k]) + eps) for k, g in grads.items()}
        return out, RmsState(state.count + 1, v)
    return GradientTransformation(init, update)
    ### END SOLUTION


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8):
    """Adam's direction. State: AdamState(count, mu, nu)."""
    ### BEGIN SOLUTION
    def init(params):
        zeros = {k: np.zeros_like(p) for k, p in params.items()}
        return AdamState(0, zeros, dict(zeros))

    def update(grads, state, params=None):
        t = state.count + 1
        m = {k: b1 * state.mu[k] + (1 - b1) * g for k, g in grads.items()}
        v = {k: b2 * state.nu[k] + (1 - b2) * g * g for k, g in grads.items()}
        out = {k: (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)
               for k in grads}
        return out, AdamState(t, m, v)
    return GradientTransformation(init, update)
    ### END SOLUTION
'''),
answer("compose_adaptive", r'''
def adagrad(lr, eps=1e-10, weight_decay=0.0, initial_accumulator_value=0.0):
    """torch.optim.Adagrad (lr_decay = 0) as a chain of your blocks."""
    ### BEGIN SOLUTION
    decay = [add_decayed_weights(weight_decay)] if weight_decay else []
    return chain(*decay, scale_by_rss(eps, initial_accumulator_value),
                 scale_by_lr(lr))
    ### END SOLUTION


def rmsprop(lr, alpha=0.99, eps=1e-8, weight_decay=0.0):
    """torch.optim.RMSprop (no momentum, not centered)."""
    ### BEGIN SOLUTION
    decay = [add_decayed_weights(weight_decay)] if weight_decay else []
    return chain(*decay, scale_by_rms(alpha, eps), scale_by_lr(lr))
    ### END SOLUTION


def adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """torch.optim.Adam (weight_decay is coupled L2, as in torch)."""
    ### BEGIN SOLUTION
    decay = [add_decayed_weights(weight_decay)] if weight_decay else []
    return chain(*decay, scale_by_adam(betas[0], betas[1], eps),
                 scale_by_lr(lr))
    ### END SOLUTION
'''),
tests("test_adagrad", 1, r'''
# Visible test: the first step has length lr in every coordinate (eps = 0).
new, state = run(adagrad(0.5, eps=0.0), {"w": np.array([0.0, 0.0])},
                 [{"w": np.array([3.0, -0.01])}])
check_array("w after one AdaGrad step", new["w"], [-0.5, 0.5], mistakes=[
    Mistake([0.5, -0.5], "the sign is flipped."),
])
# Hidden checks (torch.optim.Adagrad, params and sum) run in the grader.
'''),
tests("test_rmsprop", 1, r'''
# Visible test: alpha = 0.75, eps = 0.5: v = 0.25 * 4 = 1, step 0.1 * 2 / 1.5.
new, state = run(rmsprop(0.1, alpha=0.75, eps=0.5), {"w": np.array([0.0])},
                 [{"w": np.array([2.0])}])
check_array("w after one RMSprop step", new["w"], [-0.2 / 1.5], mistakes=[
    Mistake([-0.2 / np.sqrt(1.5)], "eps is inside the square root; torch "
            "divides by sqrt(v_t) + eps."),
    Mistake([-0.2 / (np.sqrt(3.0) + 0.5)], "the weights are swapped: "
            "v = alpha v + (1 - alpha) g * g."),
])
# Hidden checks (torch.optim.RMSprop, params and square_avg) run in the grader.
'''),
tests("test_adam", 2, r'''
# Visible test: with bias correction the first step is lr * sign(g) (eps = 0).
with np.errstate(all="ignore"):
    new, state = run(adam(0.1, eps=0.0), {"w": np.array([0.0, 0.0])},
                     [{"w": np.array([2.0, -0.5])}])
check_array("w after one Adam step", new["w"], [-0.1, 0.1], mistakes=[
    Mistake([-0.1 * 0.1 / np.sqrt(0.001), 0.1 * 0.1 / np.sqrt(0.001)],
            "missing bias correction: divide m_t by 1 - beta1**t and v_t by "
            "1 - beta2**t."),
    Mistake([0.1, -0.1], "the sign is flipped."),
], hint="Is t = 1 on the first update (count incremented before use)?")
# Hidden checks (torch.optim.Adam, params, exp_avg, exp_avg_sq, step) run in the grader.
'''),
md(r"""
## 9. Derive: L2 inside Adam is not weight decay (1 point)

With coupled L2 the term $\lambda'\theta$ enters the gradient and goes
through the preconditioner. Take $\beta_1 = 0$ (so $\hat{\mathbf{m}}_t =
\mathbf{g}_t$) and hold $\hat{\mathbf{v}}$ fixed. The part of the step
that comes from the L2 term is then $-\alpha\lambda'\theta /
(\dots)$: the parameters shrink by a factor $1 - r$ per step, with an
*effective decay* $r$ per coordinate. Return $r$ for every coordinate of
$\hat{\mathbf{v}}$: for Adam with coupled L2 (`decoupled=False`), and for
AdamW's decoupled decay (`decoupled=True`), which is applied beside the
Adam step. Which coordinates does coupled L2 decay least?
""", "q9"),
answer("effective_decay", r'''
def effective_decay(v_hat, lr, weight_decay, eps, decoupled=False):
    """Per-coordinate decay r of theta per step (shape of v_hat)."""
    ### BEGIN SOLUTION
    v_hat = np.asarray(v_hat, dtype=float)
    if decoupled:
        return np.full(v_hat.shape, lr * weight_decay)
    return lr * weight_decay / (np.sqrt(v_hat) + eps)
    ### END SOLUTION
'''),
tests("test_effective_decay", 1, r'''
# Visible test: sqrt(v_hat) = 0.5 and 2 (eps = 0), lr = 0.1, lambda = 0.2.
got = effective_decay(np.array([0.25, 4.0]), 0.1, 0.2, 0.0)
check_array("effective decay, coupled L2", got, [0.04, 0.01], mistakes=[
    Mistake([0.02, 0.02], "that is AdamW's decoupled decay lr * lambda; "
            "coupled L2 goes through the preconditioner."),
])
# Hidden checks (numerical, against Adam's update) run in the grader.
'''),
md(r"""
## 10. AdamW (1 point)

`torch.optim.AdamW` decouples the decay: it multiplies $\theta$ by
$1 - \alpha\lambda'$ and takes the Adam step with the plain gradient,
$\theta_t = \theta_{t-1} - \alpha\lambda'\theta_{t-1} -
\alpha\,\hat{\mathbf{m}}_t / (\sqrt{\hat{\mathbf{v}}_t} + \varepsilon)$.
As a chain, that is one of your blocks in a different place.
""", "q10"),
answer("adamw", r'''
def adamw(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """torch.optim.AdamW as a chain of your blocks."""
    ### BEGIN SOLUTION
    return chain(scale_by_adam(betas[0], betas[1], eps),
                 add_decayed_weights(weight_decay), scale_by_lr(lr))
    ### END SOLUTION
'''),
tests("test_adamw", 1, r'''
# Visible test: with a zero gradient only the decay moves theta.
new, _ = run(adamw(0.1, weight_decay=0.5), {"w": np.array([1.0])},
             [{"w": np.array([0.0])}])
check_array("w after one AdamW step with g = 0", new["w"], [0.95], mistakes=[
    Mistake([0.9], "coupled where it should be decoupled: AdamW adds "
            "weight_decay * theta after the Adam block, not before it."),
    Mistake([1.0], "weight decay is missing."),
])
# Hidden checks (torch.optim.AdamW) run in the grader.
'''),
md(r"""
## 11. NAdam: derive its bias correction, then compose it (1 + 2 points)

NAdam is Adam with Nesterov's look-ahead on the first moment, and with a
momentum that warms up along a schedule. The schedule is **torch's
convention** (Dozat's), given, not derived: with $\psi$ =
`momentum_decay` $= 0.004$ by default,

$$\mu_t = \beta_1\left(1 - \tfrac12\,0.96^{\,t\psi}\right).$$

**Derive** (1 point). Take a moment built with these momenta,
$\mathbf{m}_0 = 0$, $\mathbf{m}_t = \mu_t\,\mathbf{m}_{t-1} +
(1-\mu_t)\,\mathbf{g}_t$. As in question 1, unroll it: if every
$\mathbf{g}_i$ has the same mean, $\mathbb{E}[\mathbf{m}_t] =
c_t\,\mathbb{E}[\mathbf{g}]$. Find $c_t$ as a function of $\mu_1, \dots,
\mu_t$ (the weights of the gradients telescope) and return $c_1, \dots,
c_T$ for the momenta $\mu_1, \dots, \mu_T$. With a constant momentum
$\mu_t = \beta$ it is your factor of question 1.
""", "q11"),
answer("scheduled_moment_factor", r'''
def scheduled_moment_factor(mu):
    """c_1..c_T with E[m_t] = c_t E[g], for the momenta mu = (mu_1..mu_T).
    mu: array of shape (T,). Returns an array of shape (T,)."""
    ### BEGIN SOLUTION
    return 1 - np.cumprod(np.asarray(mu, dtype=float))
    ### END SOLUTION
'''),
tests("test_scheduled_moment_factor", 1, r'''
# Visible test: m_1 = (1 - mu_1) g_1, m_2 = mu_2 (1 - mu_1) g_1 + (1 - mu_2) g_2.
got = scheduled_moment_factor(np.array([0.9, 0.8, 0.5]))
check_array("scheduled_moment_factor([0.9, 0.8, 0.5])", got, [0.1, 0.28, 0.64],
            mistakes=[
    Mistake([0.9, 0.72, 0.36], "that is the product mu_1 ... mu_t, the "
            "weight the zero start keeps; the weights of the gradients sum "
            "to 1 minus it."),
])
# Hidden checks (fresh momenta, NAdam's schedule among them) run in the grader.
'''),
md(r"""
**Compose** (2 points). NAdam's direction has two parts, each divided by
your factor: the share $(1-\mu_t)\,\mathbf{g}_t$ of the current gradient
by $c_t$, and the look-ahead, the *next* step's momentum applied to the
moment, $\mu_{t+1}\mathbf{m}_t$, by $c_{t+1}$ (the factor one step
ahead). Torch keeps $\beta_1$ in the moments themselves ($\mathbf{m}_t$,
$\mathbf{v}_t$ as in Adam, from zero) and scales like Adam, $d_t =
\sqrt{\hat{\mathbf{v}}_t} + \varepsilon$ with $\hat{\mathbf{v}}_t =
\mathbf{v}_t / (1-\beta_2^t)$:

$$\mathbf{u}_t = \frac{1-\mu_t}{c_t}\,\frac{\mathbf{g}_t}{d_t} +
\frac{\mu_{t+1}}{c_{t+1}}\,\frac{\mathbf{m}_t}{d_t}.$$

The state is `NadamState(count, mu_product, mu, nu)`, with `mu_product`
$= \mu_1\cdots\mu_t$ (1 before the first update, torch's
`mu_product`): enough to compute $c_t$ and $c_{t+1}$ at every step.
Compose `nadam` like `adam` (coupled `weight_decay`).
""", "q11_compose"),
answer("nadam", r'''
def scale_by_nadam(b1=0.9, b2=0.999, eps=1e-8, momentum_decay=4e-3):
    """NAdam's direction. State: NadamState(count, mu_product, mu, nu)."""
    ### BEGIN SOLUTION
    def init(params):
        zeros = {k: np.zeros_like(p) for k, p in params.items()}
        return NadamState(0, 1.0, zeros, dict(zeros))

    def update(grads, state, params=None):
        t = state.count + 1
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        prod = state.mu_product * mu_t
        m = {k: b1 * state.mu[k] + (1 - b1) * g for k, g in grads.items()}
        v = {k: b2 * state.nu[k] + (1 - b2) * g * g for k, g in grads.items()}
        out = {}
        for k, g in grads.items():
            d = np.sqrt(v[k] / (1 - b2 ** t)) + eps
            out[k] = ((1 - mu_t) / (1 - prod)) * g / d \
                + (mu_next / (1 - prod * mu_next)) * m[k] / d
        return out, NadamState(t, prod, m, v)
    return GradientTransformation(init, update)
    ### END SOLUTION


def nadam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          momentum_decay=4e-3):
    """torch.optim.NAdam (coupled weight_decay)."""
    ### BEGIN SOLUTION
    decay = [add_decayed_weights(weight_decay)] if weight_decay else []
    return chain(*decay, scale_by_nadam(betas[0], betas[1], eps,
                                        momentum_decay), scale_by_lr(lr))
    ### END SOLUTION
'''),
tests("test_nadam", 2, r'''
# Visible test: one step with g = 2, eps = 0: d_1 = |g|, m_1 = 0.1 g, P_1 = mu_1.
mu1, mu2 = 0.9 * (1 - 0.5 * 0.96 ** 0.004), 0.9 * (1 - 0.5 * 0.96 ** 0.008)
new, state = run(nadam(0.1, eps=0.0), {"w": np.array([0.0])},
                 [{"w": np.array([2.0])}])
check_array("w after one NAdam step", new["w"],
            [-0.1 * (1 + mu2 / (1 - mu1 * mu2) * 0.1)], mistakes=[
    Mistake([0.1 * (1 + mu2 / (1 - mu1 * mu2) * 0.1)], "the sign is flipped."),
])
# Hidden checks (torch.optim.NAdam, params, moments and mu_product) run in the grader.
'''),
md(r"""
## 12. Warm-up, then cosine (1 point)

A schedule maps $k$, the number of updates already made ($k = 0$ before
the first, torch's `last_epoch`), to a learning rate. Warm-up then
cosine, as torch's
`SequentialLR([LinearLR(opt, start_factor, end_factor=1,
total_iters=W), CosineAnnealingLR(opt, T_max=T - W, eta_min)],
milestones=[W])` computes it: for $k < W$ the factor rises linearly from
`start_factor` (at $k = 0$) to 1 (reached at $k = W$); from $k = W$ on,
the cosine of `CosineAnnealingLR` restarted at $k - W$,

$$\alpha_k = \eta_{\min} + \frac{\alpha - \eta_{\min}}{2}\left(1 +
\cos\frac{\pi (k - W)}{T - W}\right) \quad (k \ge W).$$
""", "q12"),
answer("warmup_cosine", r'''
def warmup_cosine(k, lr, warmup_steps, total_steps, start_factor=1e-3,
                  eta_min=0.0):
    """The learning rate after k updates (a float)."""
    ### BEGIN SOLUTION
    W, T = warmup_steps, total_steps
    if k < W:
        return lr * (start_factor + (1 - start_factor) * k / W)
    return eta_min + (lr - eta_min) * (1 + np.cos(np.pi * (k - W) / (T - W))) / 2
    ### END SOLUTION
'''),
tests("test_warmup_cosine", 1, r'''
# Visible test: W = 2, T = 6: 0.5, 0.75, then 1, 0.75, 0.25, 0 ... (a quarter cosine each step).
got = np.array([warmup_cosine(k, 1.0, 2, 4 + 2, start_factor=0.5)
                for k in range(5)])
check_array("warmup_cosine for k = 0..4", got, [0.5, 0.75, 1.0, 0.5 + 0.5 * np.cos(np.pi / 4),
                                            0.5], mistakes=[
    Mistake([0.5, 1.0, 1.0, 0.5 + 0.5 * np.cos(np.pi / 4), 0.5],
            "the warm-up reaches lr one step early: the factor is "
            "start_factor + (1 - start_factor) k / W, 1 at k = W."),
])
# Hidden checks (torch's SequentialLR) run in the grader.
'''),
md(r"""
## 13. One-cycle (1 point)

`torch.optim.lr_scheduler.OneCycleLR` with `anneal_strategy='cos'`,
`three_phase=False` (and `cycle_momentum=False`: the learning rate
only). Torch's convention: the rate starts at $\alpha_0 =$
`max_lr / div_factor`, rises to `max_lr` at step $k_1 =$
`pct_start * total_steps - 1` and falls to $\alpha_0 /$
`final_div_factor` at step $k_2 =$ `total_steps - 1`. Each phase, from
step $a$ (rate $s$) to step $b$ (rate $e$), is a half cosine in the
phase fraction $p = (k - a)/(b - a)$: $e + \frac{s - e}{2}(1 + \cos\pi
p)$; the first phase starts at $a = 0$, the second at $a = k_1$.
""", "q13"),
answer("one_cycle", r'''
def one_cycle(k, max_lr, total_steps, pct_start=0.3, div_factor=25.0,
              final_div_factor=1e4):
    """The learning rate after k updates, 0 <= k < total_steps."""
    ### BEGIN SOLUTION
    initial = max_lr / div_factor
    final = initial / final_div_factor
    k1 = pct_start * total_steps - 1
    k2 = total_steps - 1

    def anneal(start, end, p):
        return end + (start - end) / 2 * (1 + np.cos(np.pi * p))
    if k <= k1:
        return anneal(initial, max_lr, k / k1)
    return anneal(max_lr, final, (k - k1) / (k2 - k1))
    ### END SOLUTION
'''),
tests("test_one_cycle", 1, r'''
# Visible test: total 10, pct 0.5: peak at k = 4, end at k = 9.
got = np.array([one_cycle(k, 1.0, 10, pct_start=0.5, div_factor=4.0,
                          final_div_factor=5.0) for k in (0, 2, 4, 9)])
check_array("one_cycle at k = 0, 2, 4, 9", got, [0.25, 0.625, 1.0, 0.05],
            mistakes=[
    Mistake([0.25, 0.625, 1.0, 0.2], "the final rate is max_lr / "
            "div_factor / final_div_factor (the initial rate divided)."),
])
# Hidden checks (torch's OneCycleLR) run in the grader.
'''),
md(r"""
## 14. Derive: Newton's step (1 point)

Chapter 10: near a minimum, $J(\theta + \mathbf{d}) \approx J +
\mathbf{g}^\top\mathbf{d} + \tfrac12\mathbf{d}^\top H\mathbf{d}$, with
$H$ symmetric positive definite. **Derive** the step $\mathbf{d}$ that
minimises this model (its gradient with respect to $\mathbf{d}$ is zero
there): that is Newton's step. Return it for a flat gradient `g` `(P,)`
and Hessian `H` `(P, P)`, computed by solving a linear system
(`np.linalg.solve`), not by forming $H^{-1}$ (that costs more and is less
accurate).
""", "q14"),
answer("newton_step", r'''
def newton_step(g, H):
    """The minimiser d of the quadratic model; g (P,), H (P, P). Returns (P,)."""
    ### BEGIN SOLUTION
    return -np.linalg.solve(H, g)
    ### END SOLUTION
'''),
tests("test_newton_step", 1, r'''
# Visible test: a diagonal Hessian, so the model is a sum of parabolas in
# each coordinate (1-D: J + g d + h d^2 / 2).
got = newton_step(np.array([2.0, -1.0]), np.diag([4.0, 0.5]))
check_array("newton_step(g, H)", got, [-0.5, 2.0], mistakes=[
    Mistake([0.5, -2.0], "the sign is flipped: the model decreases along "
            "the step, g^T d < 0."),
    Mistake([-8.0, 0.5], "that multiplies by the curvature; the minimiser "
            "of a parabola g d + h d^2 / 2 divides by it."),
])
# Hidden checks (Hessians from torch.autograd) run in the grader.
'''),
md(r"""
## 15. Backtracking line search (1 point)

Armijo's rule accepts a step $\alpha$ along a descent direction
$\mathbf{d}$ ($\mathbf{g}^\top\mathbf{d} < 0$) once it decreases $J$
*sufficiently*:

$$J(\theta + \alpha\,\mathbf{d}) \le J(\theta) + c\,\alpha\,
\mathbf{g}^\top\mathbf{d}.$$

Start from `alpha0` and multiply by `shrink` until the rule holds (at
most `max_steps` trials; then return the last $\alpha$ tried). Return
the accepted $\alpha$ (a float).
""", "q15"),
answer("backtracking", r'''
def backtracking(f, x, fx, g, d, alpha0=1.0, shrink=0.5, c=1e-4,
                 max_steps=60):
    """Armijo backtracking: f maps (P,) -> float, fx = f(x), g = grad at x."""
    ### BEGIN SOLUTION
    slope = float(g @ d)
    alpha = alpha0
    for _ in range(max_steps):
        if f(x + alpha * d) <= fx + c * alpha * slope:
            return alpha
        alpha = alpha * shrink
    return alpha
    ### END SOLUTION
'''),
tests("test_backtracking", 1, r'''
# Visible test: f(x) = x^2 from x = 1 along d = -g = -2, alpha0 = 1:
# alpha = 1 gives f(-1) = 1 (not below 1 - 2c), alpha = 0.5 gives f(0) = 0.
f = lambda x: float(x @ x)
x = np.array([1.0])
got = backtracking(f, x, f(x), 2 * x, -2 * x)
check_array("backtracking on x^2", got, 0.5, mistakes=[
    Mistake(1.0, "alpha = 1 does not decrease f: is the inequality the "
            "wrong way round?"),
])
# Hidden checks (a Rosenbrock valley, fresh points) run in the grader.
'''),
md(r"""
## Optional: your Adam drives `fit` and the playground (not graded)

Your optimizers are `GradientTransformation`s like the library's, so
`dlopt.train.fit` and `dlopt.playground.Playground` take them as they
are. The first cell trains a linear model with your Adam; the second
opens the playground (in Jupyter) with your Adam and NAdam in its menu.
""", "fit_intro"),
setup("fit_demo", r'''
from dlopt.train import fit

Xf = np.random.default_rng(4).normal(size=(256, 3))
yf = Xf @ np.array([1.0, -2.0, 0.5]) + 0.1


def loss_and_grads(params, Xb, yb):
    r = Xb @ params["w"] + params["b"] - yb
    return 0.5 * np.mean(r * r), {"w": Xb.T @ r / len(r),
                                  "b": np.asarray(np.mean(r))}


try:
    fitted, history = fit({"w": np.zeros(3), "b": np.zeros(())},
                          loss_and_grads, (Xf, yf), adam(0.05), epochs=20,
                          batch_size=32, progress=False)
    print(f"fit with your Adam: loss {history.loss[0]:.3f} -> "
          f"{history.loss[-1]:.5f}, w = {np.round(fitted['w'], 3)}")
except Exception as exc:      # an answer not written yet, or wrong
    print(f"fit with your Adam did not run: {type(exc).__name__}: {exc}")

'''),
nbformat.v4.new_code_cell(_src(r'''
# The playground needs a Jupyter frontend (the grader runs this cell as it is):
# set this to True and run the cell to open it.
show_playground = False
if show_playground:
    from dlopt.playground import Playground
    pg = Playground(optimizers={
        "my Adam": lambda lr, b, b2: adam(lr, betas=(b, b2)),
        "my NAdam": lambda lr, b, b2: nadam(lr, betas=(b, b2))},
        optimizer="my Adam", steps=80)
    display(pg.widget)
''')),
md(r"""
## Done

Check that every test cell above runs without an error, then submit. The
autograder reruns your notebook from the top in a fresh kernel and then
checks each answer from outside it, on fresh inputs.
""", "outro"),
]

if __name__ == "__main__":
    write(OUT, CELLS)
    print(f"wrote {OUT}")
