"""Simulated students of assignment 4, optimizers (12 points).

One student per named mistake of the course (sign flipped, momentum
buffer not started like torch's, missing bias correction, t starting at
0, eps inside the square root, coupled weight decay in AdamW), and the
classes of real-student mistakes the grader must explain: a state that is
not carried to the next step, an input array changed in place, a list or
a wrong shape returned, a rule right only for one coordinate, float32
arithmetic, a call of a forbidden reference. Each loses exactly the
points of the rule it gets wrong (computed from the points metadata).
"""

STUDENTS = {
    "sign_flipped": {
        "edit": {"sgd": [("return theta - lr * g,",
                          "return theta + lr * g,")]},
        "messages": {"test_sgd": "the sign is flipped"},
    },
    "momentum_buffer_starts_at_zero": {
        "edit": {"momentum": [
            ("        b = g.copy()\n",
             "        b = mu * state[\"b\"] + (1 - dampening) * g\n")]},
        "messages": {"test_momentum": "not initialised like torch"},
    },
    "nesterov_is_heavy_ball": {
        "edit": {"nesterov": [("theta - lr * (g + mu * b)",
                               "theta - lr * b")]},
        "messages": {"test_nesterov": "stepped along the buffer alone"},
    },
    "adagrad_eps_inside_sqrt": {
        "edit": {"adagrad": [("(np.sqrt(s) + eps)", "np.sqrt(s + eps)")]},
        "messages": {"test_adagrad": "eps is inside the square root"},
    },
    "rmsprop_eps_inside_sqrt": {
        "edit": {"rmsprop": [("(np.sqrt(v) + eps)", "np.sqrt(v + eps)")]},
        "messages": {"test_rmsprop": "eps is inside the square root"},
    },
    "adam_missing_bias_correction": {
        "edit": {"adam": [("m_hat = m / (1 - b1 ** t)", "m_hat = m"),
                          ("v_hat = v / (1 - b2 ** t)", "v_hat = v")]},
        "messages": {"test_adam": "missing bias correction"},
    },
    "adam_t_starts_at_zero": {
        "edit": {"adam": [("t = state[\"t\"] + 1", "t = state[\"t\"]"),
                          ("dict(state, t=t, m=m, v=v)",
                           "dict(state, t=t + 1, m=m, v=v)")]},
        "messages": {"test_adam": "does t start at 0"},
    },
    "adam_eps_inside_sqrt": {
        # The visible test uses eps = 0; the hidden ones catch it.
        "edit": {"adam": [("(np.sqrt(v_hat) + eps)",
                           "np.sqrt(v_hat + eps)")]},
        "messages": {"test_adam": "eps is inside the square root"},
    },
    "adamw_coupled_weight_decay": {
        "edit": {"adamw": [("theta = theta * (1 - lr * weight_decay)",
                            "g = g + weight_decay * theta")]},
        "messages": {"test_adamw": "weight decay coupled where it should "
                                   "be decoupled"},
    },
    "step_lr_float_division": {
        "edit": {"step_lr": [("gamma ** (k // step_size)",
                              "gamma ** (k / step_size)")]},
        "messages": {"test_step_lr": "use integer division"},
    },
    "cosine_missing_half": {
        "edit": {"cosine_lr": [("np.cos(np.pi * k / T_max)) / 2",
                                "np.cos(np.pi * k / T_max))")]},
        "messages": {"test_cosine_lr": "the factor 1/2 is missing"},
    },
    "calls_the_reference": {
        # dlopt.optim is absent from the grader's kernel.
        "edit": {"sgd": [
            ("return theta - lr * g, dict(state, t=state[\"t\"] + 1)",
             "from dlopt.optim import sgd\n"
             "    opt, p = sgd(lr), {\"w\": theta}\n"
             "    u, _ = opt.update({\"w\": g}, opt.init(p), p)\n"
             "    return theta + u[\"w\"], dict(state, t=state[\"t\"] + 1)")]},
        "messages": {"test_sgd": "reference implementation"},
    },
    "calls_torch": {
        "edit": {"adam": [("    b1, b2 = betas\n",
                           "    import torch\n    b1, b2 = betas\n")]},
        "messages": {"test_adam": "torch, which is not available while "
                                  "grading"},
    },
    # -- state not carried to the next step ------------------------------
    "momentum_state_not_carried": {
        # Visible test: the second step starts again from b = g.
        "edit": {"momentum": [("return theta - lr * b, dict(state, t=t, "
                               "b=b)", "return theta - lr * b, state")]},
        "messages": {"test_momentum": "not carried to the next step"},
    },
    "adam_state_not_carried": {
        # One step is right (the visible test); the run is not.
        "edit": {"adam": [("return theta, dict(state, t=t, m=m, v=v)",
                           "return theta, state")]},
        "messages": {"test_adam": "Hidden check"},
    },
    "sgd_t_not_counted": {
        # theta is right; t stays 0, which the state must count.
        "edit": {"sgd": [("dict(state, t=state[\"t\"] + 1)", "state")]},
        "messages": {"test_sgd": "not carried to the next step"},
    },
    # -- an input array changed in place -----------------------------------
    "sgd_changes_g_in_place": {
        "edit": {"sgd": [("g = g + weight_decay * theta",
                          "g += weight_decay * theta")]},
        "messages": {"test_sgd": "changed its input g in place"},
    },
    "adamw_changes_theta_in_place": {
        "edit": {"adamw": [("theta = theta * (1 - lr * weight_decay)",
                            "theta *= 1 - lr * weight_decay")]},
        "messages": {"test_adamw": "changed its input theta in place"},
    },
    # -- a list or a wrong shape returned -----------------------------------
    "adagrad_returns_a_list": {
        "edit": {"adagrad": [("return theta, dict(state, t=state[\"t\"] + 1"
                              ", s=s)", "return theta.tolist(), dict(state,"
                              " t=state[\"t\"] + 1, s=s)")]},
        "messages": {"test_adagrad": "return a NumPy array"},
    },
    "nesterov_flattens_theta": {
        # Right for the visible 1-D theta; the hidden ones are matrices.
        "edit": {"nesterov": [("return theta - lr * (g + mu * b),",
                               "return (theta - lr * (g + mu * b))"
                               ".ravel(),")]},
        "messages": {"test_nesterov": "it must have theta's shape"},
    },
    # -- right only for one coordinate ---------------------------------------
    "rmsprop_sum_of_squares": {
        "edit": {"rmsprop": [("(1 - rho) * g * g",
                              "(1 - rho) * np.sum(g * g)")]},
        "messages": {"test_rmsprop": "the square is per coordinate"},
    },
    # -- float32 -------------------------------------------------------------
    "adam_in_float32": {
        "edit": {"adam": [("theta = theta - lr * m_hat / (np.sqrt(v_hat) + "
                           "eps)", "theta = (theta - lr * m_hat / (np.sqrt("
                           "v_hat) + eps)).astype(np.float32)")]},
        "messages": {"test_adam": "compute in float64"},
    },
}
