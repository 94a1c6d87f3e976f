"""dlopt.playground: the widget driven headlessly, and the animations."""

import numpy as np
import pytest

from dlopt import landscapes, optim
from dlopt.playground import (BUILTIN, START, Playground, animate,
                              from_rule, make_optimizer, trajectory)


def test_widget_runs_and_redraws_when_a_slider_moves():
    pg = Playground(landscape="rosenbrock", optimizer="Adam", lr=0.05,
                    steps=60)
    before = pg.result.params.copy()
    png_before = pg.image.value
    assert png_before[:8] == b"\x89PNG\r\n\x1a\n"
    pg.controls["lr"].value = 0.01
    after = pg.result.params
    assert not np.allclose(before, after)
    assert pg.image.value != png_before
    # The drawn data is the run, and the run is a direct dlopt run.
    ref = landscapes.run(optim.adam(0.01, betas=(0.9, 0.999)),
                         landscapes.rosenbrock(), START["rosenbrock"], 60)
    np.testing.assert_array_equal(after, ref.params)
    np.testing.assert_array_equal(pg.path_line.get_xdata(), ref.params[:, 0])
    np.testing.assert_array_equal(pg.path_line.get_ydata(), ref.params[:, 1])
    np.testing.assert_allclose(pg.ax_loss.lines[0].get_ydata(), ref.loss)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_optimizer_and_beta_sliders_drive_the_run(name):
    pg = Playground(landscape="quadratic", optimizer=name, lr=0.05,
                    steps=40)
    pg.controls["beta"].value = 0.5
    pg.controls["beta2"].value = 0.9
    ref = landscapes.run(make_optimizer(name, 0.05, 0.5, 0.9),
                         landscapes.quadratic(), START["quadratic"], 40)
    np.testing.assert_array_equal(pg.result.params, ref.params)


def test_landscape_and_steps_controls():
    pg = Playground(landscape="quadratic", optimizer="SGD", lr=0.005,
                    steps=30)
    pg.controls["landscape"].value = "himmelblau"
    pg.controls["steps"].value = 50
    assert pg.result.params.shape == (51, 2)
    np.testing.assert_array_equal(pg.result.params[0], START["himmelblau"])
    assert "himmelblau" in pg.ax_path.get_title().lower()


def _sgd_rule(theta, g, state, lr, beta, beta2):
    return theta - lr * g, dict(state, t=state["t"] + 1)


def _momentum_rule(theta, g, state, lr, beta, beta2):
    b = g.copy() if state["t"] == 0 else beta * state["b"] + g
    return theta - lr * b, {"t": state["t"] + 1, "b": b}


def _my_momentum(lr, mu):
    """A student's optimizer: the same kind of object as the library's."""
    def init(params):
        return {k: np.zeros_like(v) for k, v in params.items()}

    def update(grads, state, params=None):
        b = {k: mu * state[k] + g for k, g in grads.items()}
        return {k: -lr * v for k, v in b.items()}, b
    return optim.GradientTransformation(init, update)


def _init(theta):
    return {"t": 0, "b": np.zeros_like(theta)}


def test_user_rules_drive_the_widget_and_match_the_reference():
    pg = Playground(rules={"mine": _momentum_rule}, init_state=_init,
                    landscape="quadratic", optimizer="mine", lr=0.02,
                    steps=50)
    pg.controls["beta"].value = 0.8
    ref = landscapes.run(optim.sgd(0.02, momentum=0.8),
                         landscapes.quadratic(), START["quadratic"], 50)
    np.testing.assert_allclose(pg.result.params, ref.params, rtol=1e-13)
    assert pg.message is None


def test_a_students_transformation_drives_the_widget():
    pg = Playground(optimizers={"mine": lambda lr, b, b2: _my_momentum(lr,
                                                                       b)},
                    landscape="quadratic", optimizer="mine", lr=0.02,
                    steps=50)
    pg.controls["beta"].value = 0.8
    ref = landscapes.run(optim.sgd(0.02, momentum=0.8),
                         landscapes.quadratic(), START["quadratic"], 50)
    np.testing.assert_allclose(pg.result.params, ref.params, rtol=1e-13)
    # a ready-made transformation ignores the sliders
    pg = Playground(optimizers={"fixed": _my_momentum(0.02, 0.8)},
                    landscape="quadratic", optimizer="fixed", steps=50)
    np.testing.assert_allclose(pg.result.params, ref.params, rtol=1e-13)


def test_a_failing_user_rule_is_reported_not_raised():
    def broken(theta, g, state, lr, beta, beta2):
        raise NotImplementedError()
    pg = Playground(rules={"mine": broken}, init_state=_init,
                    optimizer="mine")
    assert "NotImplementedError" in pg.message
    assert "NotImplementedError" in pg.status.value
    assert pg.result.params.shape == (1, 2)


def test_divergence_is_cut_and_reported():
    # kappa = 10: 2/L = 0.2, so alpha = 0.5 multiplies y by -4 per step.
    tr, msg = trajectory("SGD", "quadratic", steps=1000, lr=0.5)
    assert msg is not None and "diverged" in msg
    assert np.all(np.isfinite(tr.params))
    tr, msg = trajectory("SGD", "quadratic", steps=100, lr=0.05)
    assert msg is None and tr.params.shape == (101, 2)


def test_from_rule_matches_trajectory():
    tr1, _ = trajectory(from_rule(_sgd_rule, lambda th: {"t": 0}), "beale",
                        (1.0, 1.4), 30, lr=0.01)
    tr2, _ = trajectory("SGD", "beale", (1.0, 1.4), 30, lr=0.01)
    np.testing.assert_allclose(tr1.params, tr2.params, rtol=1e-14)


def test_bad_arguments_have_clear_errors():
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("adamax", 0.1)
    with pytest.raises(ValueError, match="landscape"):
        trajectory("SGD", "moon", steps=3)
    with pytest.raises(ValueError, match="steps"):
        trajectory("SGD", "quadratic", steps=-1)
    with pytest.raises(TypeError, match="rules"):
        Playground(rules={"x": 3})
    with pytest.raises(TypeError, match="GradientTransformation"):
        trajectory(3, "quadratic", steps=3)
    with pytest.raises(ValueError, match="taken"):
        Playground(rules={"Adam": _sgd_rule})


@pytest.mark.filterwarnings("ignore:Animation was deleted")
def test_animation_frames_show_growing_paths():
    tr = trajectory("SGD", "quadratic", steps=40, lr=0.1)[0]
    anim = animate("quadratic", {"SGD": tr}, frames=4)
    line = [ln for ln in anim._fig.axes[0].lines
            if ln.get_label() == "SGD"][0]
    lengths = []
    for i in range(4):
        anim._func(i)
        lengths.append(len(line.get_xdata()))
    anim._draw_was_started = True       # not rendered on purpose
    assert lengths == sorted(lengths) and lengths[-1] == 41
    with pytest.raises(ValueError, match="shape"):
        animate("quadratic", {"bad": np.zeros((3, 3))})


@pytest.mark.filterwarnings("ignore:Animation was deleted")
def test_animation_axis_labels():
    tr = trajectory("SGD", "quadratic", steps=5, lr=0.1)[0]
    anim = animate("quadratic", {"SGD": tr}, frames=2,
                   labels=("θ0", "θ1"))
    anim._draw_was_started = True       # not rendered on purpose
    ax = anim._fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("θ0", "θ1")
