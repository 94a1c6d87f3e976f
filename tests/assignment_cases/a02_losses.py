"""Simulated students of assignment 2, losses (12 points).

Points: test_mse 2, test_bce_value 1, test_bce_grad 2, test_ce_value 1,
test_ce_grad 2, test_numerical_grad 2, test_failing_step 2.
"""

STUDENTS = {
    "mse_sign_flipped": {
        "edit": {"mse": [("dY_hat = R / N", "dY_hat = -R / N")]},
        "score": 10,
        "messages": {"test_mse": "sign is flipped"},
    },
    "mse_missing_1_over_N": {
        "edit": {"mse": [("dY_hat = R / N", "dY_hat = R")]},
        "score": 10,
        "messages": {"test_mse": "1/N is missing"},
    },
    "bce_gradient_wrt_probabilities": {
        "edit": {"bce": [("dz = (p - y) / N",
                          "dz = (p - y) / (p * (1 - p)) / N")]},
        "score": 10,
        "messages": {"test_bce_grad": "with respect to the probabilities"},
    },
    "bce_naive_log_of_sigmoid": {
        "edit": {"bce": [(
            "L = np.sum(np.maximum(z, 0) - z * y + np.log1p("
            "np.exp(-np.abs(z)))) / N",
            "p_ = sigmoid(z)\n"
            "    L = -np.sum(y * np.log(p_) + (1 - y) * np.log(1 - p_)) "
            "/ N")]},
        "score": 11,
        "messages": {"test_bce_value": "overflows"},
    },
    "ce_gradient_wrt_probabilities": {
        "edit": {"softmax_ce": [("dZ = (P - Y) / N", "dZ = -Y / P / N")]},
        "score": 10,
        "messages": {"test_ce_grad": "with respect to the probabilities"},
    },
    "ce_softmax_over_wrong_axis": {
        "edit": {"softmax_ce": [(
            "P = softmax(Z)",
            "P = np.exp(Z) / np.exp(Z).sum(axis=0, keepdims=True)")]},
        "score": 10,
        "messages": {"test_ce_grad": "wrong axis"},
    },
    "ce_without_log_sum_exp": {
        "edit": {"softmax_ce": [(
            "S = Z - Z.max(axis=1, keepdims=True)", "S = Z")]},
        "score": 11,
        "messages": {"test_ce_value": "overflows"},
    },
    "numgrad_one_sided": {
        "edit": {"numerical_grad": [
            ("x[i] = old - h\n        f_minus = f(x)",
             "x[i] = old\n        f_minus = f(x)"),
            ("/ (2 * h)", "/ h")]},
        "score": 10,
        "messages": {"test_numerical_grad": "one-sided"},
    },
    "numgrad_divides_by_h": {
        "edit": {"numerical_grad": [("/ (2 * h)", "/ h")]},
        "score": 10,
        "messages": {"test_numerical_grad": "divides by 2h"},
    },
    "numgrad_changes_x": {
        "edit": {"numerical_grad": [
            ("    x = np.array(x, dtype=float)\n", ""),
            ("        x[i] = old\n        grad[i]", "        grad[i]")]},
        "score": 10,
        "messages": {"test_numerical_grad": "changed its argument x"},
    },
    "failing_step_hard_coded": {
        "edit": {"failing_step": (
            "def failing_step(steps, tol=1e-5):\n"
            "    return \"dL/dP\"\n")},
        "score": 10,
        "messages": {"test_failing_step": "should return None"},
    },
    "failing_step_checks_only_the_loss": {
        "edit": {"failing_step": [(
            "    for name, forward, backward, x in steps:",
            "    for name, forward, backward, x in steps[:1]:")]},
        "score": 10,
        "messages": {"test_failing_step": "the wrong step is 'dP/dZ'"},
    },
}
