"""Simulated students of assignment 4, the optimizer as a mapping.

One student per named mistake of the course (a derivation answered with
the wrong factor, the sign of the step, torch's momentum buffer not
started like torch's, Nesterov as the heavy ball, the look-ahead point
mistaken for the parameters, eps inside the square root, missing bias
correction, coupled decay in AdamW, NAdam without its momentum schedule,
a warm-up one step short, one-cycle's final rate, -H g for Newton's
step, Armijo's inequality the wrong way round), and the classes of
real-student mistakes the grader must explain: a state that is not
carried to the next step (count not incremented, the old state
returned), an input changed in place, a list or a wrong shape returned,
a rule right only for one coordinate or for one parameter array,
float32 arithmetic, a call of a forbidden reference (dlopt's adam,
torch). A mistake in a building block fails every composition that uses
it (listed in ``fails``); the expected totals come from the points
metadata.
"""

ALL_OPT = ["test_sgd", "test_momentum", "test_nesterov", "test_adagrad",
           "test_rmsprop", "test_adam", "test_adamw", "test_nadam"]

STUDENTS = {
    # -- derivations --------------------------------------------------------
    "bias_factor_is_beta_t": {
        "edit": {"moment_mean_factor": [
            ("return 1 - np.asarray(beta, dtype=float) ** t",
             "return np.asarray(beta, dtype=float) ** t")]},
        "messages": {"test_moment_mean_factor": "that is beta**t"},
    },
    "lookahead_phi_is_theta": {
        "edit": {"lookahead_to_torch": [("return theta + mu * v, -v / lr",
                                         "return theta, -v / lr")]},
        "messages": {"test_lookahead_to_torch": "that is theta_t"},
    },
    "effective_decay_is_adamw_s": {
        "edit": {"effective_decay": [
            ("return lr * weight_decay / (np.sqrt(v_hat) + eps)",
             "return np.full(v_hat.shape, lr * weight_decay)")]},
        "messages": {"test_effective_decay": "that is AdamW's decoupled"},
    },
    "scheduled_factor_is_the_product": {
        "edit": {"scheduled_moment_factor": [
            ("return 1 - np.cumprod(np.asarray(mu, dtype=float))",
             "return np.cumprod(np.asarray(mu, dtype=float))")]},
        "messages": {"test_scheduled_moment_factor":
                     "that is the product mu_1 ... mu_t"},
    },
    "scheduled_factor_with_frozen_momentum": {
        # question 1's answer reused with the current momentum
        "edit": {"scheduled_moment_factor": [
            ("return 1 - np.cumprod(np.asarray(mu, dtype=float))",
             "mu = np.asarray(mu, dtype=float)\n"
             "    return 1 - mu ** np.arange(1, len(mu) + 1)")]},
        "messages": {"test_scheduled_moment_factor":
                     "with the current momentum frozen"},
    },
    # -- blocks and compositions ----------------------------------------------
    "sign_flipped": {
        "edit": {"blocks_sgd": [("return {k: -lr * u for k, u in",
                                 "return {k: lr * u for k, u in")]},
        "messages": {t: "the sign is flipped" for t in ALL_OPT},
    },
    "momentum_buffer_starts_at_zero": {
        "edit": {"trace": [
            ("b = g.copy() if t == 1 else mu * state.trace[k] + "
             "(1 - dampening) * g",
             "b = mu * state.trace[k] + (1 - dampening) * g")]},
        "messages": {"test_momentum": "not started like torch's"},
    },
    "nesterov_is_heavy_ball": {
        "edit": {"trace": [("out[k] = g + mu * b if nesterov else b",
                            "out[k] = b")]},
        "messages": {"test_nesterov": "heavy ball"},
    },
    "adagrad_eps_inside_sqrt": {
        # The visible test uses eps = 0; a hidden one has eps = 0.05.
        "edit": {"blocks_adaptive": [
            ("out = {k: g / (np.sqrt(s[k]) + eps)",
             "out = {k: g / np.sqrt(s[k] + eps)")]},
        "messages": {"test_adagrad": "eps is inside the square root"},
    },
    "adam_missing_bias_correction": {
        "edit": {"blocks_adaptive": [
            ("(m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)",
             "m[k] / (np.sqrt(v[k]) + eps)")]},
        "messages": {"test_adam": "missing bias correction",
                     "test_adamw": "missing bias correction"},
    },
    "adamw_coupled_weight_decay": {
        "edit": {"adamw": [
            ("return chain(scale_by_adam(betas[0], betas[1], eps),\n"
             "                 add_decayed_weights(weight_decay), "
             "scale_by_lr(lr))",
             "return chain(add_decayed_weights(weight_decay),\n"
             "                 scale_by_adam(betas[0], betas[1], eps), "
             "scale_by_lr(lr))")]},
        "messages": {"test_adamw": "coupled where it should be decoupled"},
    },
    "nadam_without_momentum_schedule": {
        "edit": {"nadam": [
            ("mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))",
             "mu_t = b1"),
            ("mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))",
             "mu_next = b1")]},
        "messages": {"test_nadam": "the momentum schedule is missing"},
    },
    # -- schedules, second order ----------------------------------------------
    "warmup_one_step_early": {
        "edit": {"warmup_cosine": [("(1 - start_factor) * k / W)",
                                    "(1 - start_factor) * k / (W - 1))")]},
        "messages": {"test_warmup_cosine": "one step early"},
    },
    "one_cycle_final_rate": {
        "edit": {"one_cycle": [("final = initial / final_div_factor",
                                "final = max_lr / final_div_factor")]},
        "messages": {"test_one_cycle": "the final rate"},
    },
    "newton_times_H": {
        "edit": {"newton_step": [("return -np.linalg.solve(H, g)",
                                  "return -H @ g")]},
        "messages": {"test_newton_step": "that is -H g"},
    },
    "armijo_reversed": {
        "edit": {"backtracking": [
            ("if f(x + alpha * d) <= fx + c * alpha * slope:",
             "if f(x + alpha * d) > fx + c * alpha * slope:")]},
        "messages": {"test_backtracking": "the wrong way round"},
    },
    # -- state not carried to the next step -----------------------------------
    "adam_count_not_incremented": {
        "edit": {"blocks_adaptive": [("return out, AdamState(t, m, v)",
                                      "return out, AdamState(state.count, "
                                      "m, v)")]},
        "messages": {"test_adam": "t is not counted",
                     "test_adamw": "t is not counted"},
    },
    "adam_returns_the_old_state": {
        # One step is right (the visible test); the run is not.
        "edit": {"blocks_adaptive": [("return out, AdamState(t, m, v)",
                                      "return out, state")]},
        "messages": {"test_adam": "return the new state",
                     "test_adamw": "return the new state"},
    },
    # -- an input changed in place --------------------------------------------
    "decay_changes_grads_in_place": {
        # AdamW decays the Adam block's own new dict: it still passes.
        "edit": {"blocks_sgd": [
            ("return {k: u + weight_decay * params[k]\n"
             "                for k, u in grads.items()}, state",
             "for k in grads:\n"
             "            grads[k] += weight_decay * params[k]\n"
             "        return grads, state")]},
        # The runs are right: the changed input is a note in every
        # composition that uses the block, not scored (only the kernel can
        # see it, and the student's code could fake it).
        "notes": {t: "changed its input grads in place" for t in
                  ["test_sgd", "test_momentum", "test_nesterov",
                   "test_adagrad", "test_rmsprop", "test_adam",
                   "test_nadam"]},
    },
    # -- a list or a wrong shape returned -------------------------------------
    "newton_returns_a_list": {
        "edit": {"newton_step": [("return -np.linalg.solve(H, g)",
                                  "return list(-np.linalg.solve(H, g))")]},
        "messages": {"test_newton_step": "is a Python list"},
    },
    "adagrad_flattens_its_output": {
        # Right for the visible 1-D parameter; the hidden W is a matrix.
        "edit": {"blocks_adaptive": [
            ("out = {k: g / (np.sqrt(s[k]) + eps) for k, g in grads.items()}",
             "out = {k: (g / (np.sqrt(s[k]) + eps)).ravel() "
             "for k, g in grads.items()}")]},
        "messages": {"test_adagrad": "updates['W'] has shape"},
    },
    # -- right only for one coordinate ----------------------------------------
    "rmsprop_sum_of_squares": {
        "edit": {"blocks_adaptive": [
            ("v = {k: alpha * state.nu[k] + (1 - alpha) * g * g",
             "v = {k: alpha * state.nu[k] + (1 - alpha) * np.sum(g * g)")]},
        "messages": {"test_rmsprop": "the square is per coordinate"},
    },
    "rmsprop_updates_only_the_first_array": {
        # Right for the visible single array; the hidden params have three.
        "edit": {"blocks_adaptive": [
            ("out = {k: g / (np.sqrt(v[k]) + eps) for k, g in grads.items()}",
             "out = {k: g / (np.sqrt(v[k]) + eps) "
             "for k, g in list(grads.items())[:1]}")]},
        "messages": {"test_rmsprop": "return an update for every array"},
    },
    # -- float32 --------------------------------------------------------------
    "adam_in_float32": {
        "edit": {"blocks_adaptive": [
            ("return out, AdamState(t, m, v)",
             "return {k: u.astype(np.float32) for k, u in out.items()}, "
             "AdamState(t, m, v)")]},
        # AdamW's decay block adds float64 weight_decay * params to the
        # float32 direction: its updates are float64 and agree with torch
        # to 1e-7 (within the 1e-6 tolerance, or not, by the draw); the
        # direction read back from the run is float32: AdamW fails too.
        "messages": {"test_adam": "compute in float64",
                     "test_adamw": "rounded to float32"},
    },
    # -- forbidden references -------------------------------------------------
    "calls_the_reference": {
        "edit": {"compose_adaptive": [
            ("    decay = [add_decayed_weights(weight_decay)] if weight_decay "
             "else []\n    return chain(*decay, scale_by_adam(",
             "    from dlopt.optim import adam as reference\n"
             "    return reference(lr, betas, eps, weight_decay)\n"
             "    return chain(scale_by_adam(")]},
        "messages": {"test_adam": "the course's reference"},
    },
    "calls_torch": {
        "edit": {"nadam": [("    def init(params):\n        zeros = {k: "
                            "np.zeros_like(p) for k, p in params.items()}\n"
                            "        return NadamState(",
                            "    import torch\n\n    def init(params):\n"
                            "        zeros = {k: np.zeros_like(p) for k, p "
                            "in params.items()}\n        return NadamState(")]},
        "messages": {"test_nadam": "torch, which is not available while "
                                   "grading"},
    },
}
