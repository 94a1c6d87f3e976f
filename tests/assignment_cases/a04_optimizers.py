"""Simulated students of assignment 4, optimizers (12 points).

One student per named mistake of the course (sign flipped, momentum
buffer not started like torch's, missing bias correction, t starting at
0, eps inside the square root, coupled weight decay in AdamW) and a few
more; each loses exactly the points of the rule it gets wrong.
"""

STUDENTS = {
    "sign_flipped": {
        "edit": {"sgd": [("return theta - lr * g,",
                          "return theta + lr * g,")]},
        "score": 11,
        "messages": {"test_sgd": "the sign is flipped"},
    },
    "momentum_buffer_starts_at_zero": {
        "edit": {"momentum": [
            ("        b = g.copy()\n",
             "        b = mu * state[\"b\"] + (1 - dampening) * g\n")]},
        "score": 10,
        "messages": {"test_momentum": "not initialised like torch"},
    },
    "nesterov_is_heavy_ball": {
        "edit": {"nesterov": [("theta - lr * (g + mu * b)",
                               "theta - lr * b")]},
        "score": 11,
        "messages": {"test_nesterov": "stepped along the buffer alone"},
    },
    "adagrad_eps_inside_sqrt": {
        "edit": {"adagrad": [("(np.sqrt(s) + eps)", "np.sqrt(s + eps)")]},
        "score": 11,
        "messages": {"test_adagrad": "eps is inside the square root"},
    },
    "rmsprop_eps_inside_sqrt": {
        "edit": {"rmsprop": [("(np.sqrt(v) + eps)", "np.sqrt(v + eps)")]},
        "score": 11,
        "messages": {"test_rmsprop": "eps is inside the square root"},
    },
    "adam_missing_bias_correction": {
        "edit": {"adam": [("m_hat = m / (1 - b1 ** t)", "m_hat = m"),
                          ("v_hat = v / (1 - b2 ** t)", "v_hat = v")]},
        "score": 10,
        "messages": {"test_adam": "missing bias correction"},
    },
    "adam_t_starts_at_zero": {
        "edit": {"adam": [("t = state[\"t\"] + 1", "t = state[\"t\"]"),
                          ("dict(state, t=t, m=m, v=v)",
                           "dict(state, t=t + 1, m=m, v=v)")]},
        "score": 10,
        "messages": {"test_adam": "does t start at 0"},
    },
    "adam_eps_inside_sqrt": {
        # The visible test uses eps = 0; the hidden ones catch it.
        "edit": {"adam": [("(np.sqrt(v_hat) + eps)",
                           "np.sqrt(v_hat + eps)")]},
        "score": 10,
        "messages": {"test_adam": "eps is inside the square root"},
    },
    "adamw_coupled_weight_decay": {
        "edit": {"adamw": [("theta = theta * (1 - lr * weight_decay)",
                            "g = g + weight_decay * theta")]},
        "score": 10,
        "messages": {"test_adamw": "weight decay coupled where it should "
                                   "be decoupled"},
    },
    "step_lr_float_division": {
        "edit": {"step_lr": [("gamma ** (k // step_size)",
                              "gamma ** (k / step_size)")]},
        "score": 11,
        "messages": {"test_step_lr": "use integer division"},
    },
    "cosine_missing_half": {
        "edit": {"cosine_lr": [("np.cos(np.pi * k / T_max)) / 2",
                                "np.cos(np.pi * k / T_max))")]},
        "score": 11,
        "messages": {"test_cosine_lr": "the factor 1/2 is missing"},
    },
    "calls_the_reference": {
        "edit": {"sgd": [
            ("return theta - lr * g, dict(state, t=state[\"t\"] + 1)",
             "from dlopt.optim import sgd\n"
             "    opt, p = sgd(lr), {\"w\": theta}\n"
             "    u, _ = opt.update({\"w\": g}, opt.init(p), p)\n"
             "    return theta + u[\"w\"], dict(state, t=state[\"t\"] + 1)")]},
        "score": 11,
        "messages": {"test_sgd": "reference implementation"},
    },
}
