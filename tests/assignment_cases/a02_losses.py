"""Simulated students of assignment 2, losses (12 points).

Points: test_mse 2, test_bce_value 1, test_bce_grad 2, test_ce_value 1,
test_ce_grad 2, test_numerical_grad 2, test_failing_step 2. Expected totals
are computed from these (see assignment_cases/__init__.py).
"""

NUMGRAD_LOOP = (
    "        x[i] = old + h\n        f_plus = f(x)\n"
    "        x[i] = old - h\n        f_minus = f(x)\n        x[i] = old\n")

STUDENTS = {
    "mse_sign_flipped": {
        "edit": {"mse": [("dY_hat = R / N", "dY_hat = -R / N")]},
        "messages": {"test_mse": "sign is flipped"},
    },
    "mse_missing_1_over_N": {
        "edit": {"mse": [("dY_hat = R / N", "dY_hat = R")]},
        "messages": {"test_mse": "1/N is missing"},
    },
    "mse_in_float32": {
        # Right to float32 precision: told to compute in float64, never
        # shown two identical-looking numbers.
        "edit": {"mse": [("R = Y_hat - Y",
                          "R = (Y_hat - Y).astype(np.float32)")]},
        "messages": {"test_mse": "compute in float64"},
    },
    "mse_returns_a_list": {
        "edit": {"mse": [("return L, dY_hat", "return L, dY_hat.tolist()")]},
        "messages": {"test_mse": "is a Python list"},
    },
    "mse_calls_the_reference": {
        "edit": {"mse": [("    N = Y_hat.shape[0]\n",
                          "    from dlopt.losses import mse as reference\n"
                          "    return reference(Y_hat, Y)\n"
                          "    N = Y_hat.shape[0]\n")]},
        "messages": {"test_mse": "the course's reference implementation"},
    },
    "bce_gradient_wrt_probabilities": {
        "edit": {"bce": [("dz = (p - y) / N",
                          "dz = (p - y) / (p * (1 - p)) / N")]},
        "messages": {"test_bce_grad": "with respect to the probabilities"},
    },
    "bce_gradient_as_a_column": {
        "edit": {"bce": [("dz = (p - y) / N",
                          "dz = ((p - y) / N).reshape(-1, 1)")]},
        "messages": {"test_bce_grad": "has shape (3, 1); expected (3,)"},
    },
    "bce_naive_log_of_sigmoid": {
        "edit": {"bce": [(
            "L = np.sum(np.maximum(z, 0) - z * y + np.log1p("
            "np.exp(-np.abs(z)))) / N",
            "p_ = sigmoid(z)\n"
            "    L = -np.sum(y * np.log(p_) + (1 - y) * np.log(1 - p_)) "
            "/ N")]},
        "messages": {"test_bce_value": "overflows"},
    },
    "bce_calls_torch": {
        "edit": {"bce": [("    N = z.shape[0]\n",
                          "    import torch\n    N = z.shape[0]\n")]},
        "messages": {"test_bce_value": "imports torch, which is not available",
                     "test_bce_grad": "imports torch, which is not available"},
    },
    "ce_gradient_wrt_probabilities": {
        "edit": {"softmax_ce": [("dZ = (P - Y) / N", "dZ = -Y / P / N")]},
        "messages": {"test_ce_grad": "with respect to the probabilities"},
    },
    "ce_softmax_over_wrong_axis": {
        "edit": {"softmax_ce": [(
            "P = softmax(Z)",
            "P = np.exp(Z) / np.exp(Z).sum(axis=0, keepdims=True)")]},
        "messages": {"test_ce_grad": "wrong axis"},
    },
    "ce_without_log_sum_exp": {
        "edit": {"softmax_ce": [(
            "S = Z - Z.max(axis=1, keepdims=True)", "S = Z")]},
        "messages": {"test_ce_value": "overflows"},
    },
    "ce_one_hot_right_only_for_one_example": {
        "edit": {"softmax_ce": [(
            "    Y = np.zeros((N, K))\n    Y[np.arange(N), y] = 1.0\n",
            "    Y = np.zeros(K)\n    Y[y] = 1.0\n")]},
        "messages": {"test_ce_value": "one-hot targets",
                     "test_ce_grad": "one-hot targets"},
    },
    "ce_shifts_the_callers_logits_in_place": {
        # Mutating its input leaves the loss and gradient right: the
        # grader keeps its own inputs, so this earns full marks.
        "edit": {"softmax_ce": [(
            "S = Z - Z.max(axis=1, keepdims=True)",
            "Z -= Z.max(axis=1, keepdims=True)\n    S = Z")]},
        "messages": {},
    },
    "numgrad_one_sided": {
        "edit": {"numerical_grad": [
            ("x[i] = old - h\n        f_minus = f(x)",
             "x[i] = old\n        f_minus = f(x)"),
            ("/ (2 * h)", "/ h")]},
        "messages": {"test_numerical_grad": "one-sided"},
    },
    "numgrad_divides_by_h": {
        "edit": {"numerical_grad": [("/ (2 * h)", "/ h")]},
        "messages": {"test_numerical_grad": "divides by 2h"},
    },
    "numgrad_changes_x": {
        "edit": {"numerical_grad": [
            ("    x = np.array(x, dtype=float)\n", ""),
            ("        x[i] = old\n        grad[i]", "        grad[i]")]},
        "messages": {"test_numerical_grad": "changed its argument x"},
    },
    "numgrad_never_restores": {
        # Works on a copy, so x is unchanged; the visible function is a sum
        # over entries, where this does not show: the hidden ones interact.
        "edit": {"numerical_grad": [
            ("        x[i] = old\n        grad[i]", "        grad[i]")]},
        "messages": {"test_numerical_grad": "is left at x[i] - h"},
    },
    "numgrad_restores_after_one_side_only": {
        "edit": {"numerical_grad": [(
            NUMGRAD_LOOP,
            "        x[i] += h\n        f_plus = f(x)\n        x[i] -= h\n"
            "        x[i] -= h\n        f_minus = f(x)\n")]},
        "messages": {"test_numerical_grad": "restored after the + side"},
    },
    "numgrad_mutates_the_callers_x": {
        # No copy; restores by arithmetic, which rounds: the caller's x
        # comes back changed in its last bits.
        "edit": {"numerical_grad": [
            ("    x = np.array(x, dtype=float)\n", ""),
            (NUMGRAD_LOOP,
             "        x[i] += h\n        f_plus = f(x)\n"
             "        x[i] -= 2 * h\n        f_minus = f(x)\n"
             "        x[i] += h\n")]},
        # The gradient is right: the changed x is a note, not scored.
        "notes": {"test_numerical_grad": "does not always give back the "
                                         "same float"},
    },
    "numgrad_in_float32": {
        "edit": {"numerical_grad": [("x = np.array(x, dtype=float)",
                                     "x = np.array(x, dtype=np.float32)")]},
        "messages": {"test_numerical_grad": "compute in float64"},
    },
    "numgrad_flattens_the_result": {
        # Right for a vector x: the hidden checks also use matrices.
        "edit": {"numerical_grad": [("    return grad",
                                     "    return grad.ravel()")]},
        "messages": {"test_numerical_grad": "has shape (6,); expected "
                                            "(2, 3)"},
    },
    "numgrad_calls_the_reference": {
        "edit": {"numerical_grad": (
            "def numerical_grad(f, x, h=1e-5):\n"
            "    from dlopt.gradcheck import numerical_gradient\n"
            "    return numerical_gradient(f, np.array(x, dtype=float),\n"
            "                              h)\n")},
        "messages": {"test_numerical_grad": "the course's reference "
                                            "implementation"},
    },
    "failing_step_hard_coded": {
        "edit": {"failing_step": (
            "def failing_step(steps, tol=1e-5):\n"
            "    return \"dL/dP\"\n")},
        "messages": {"test_failing_step": "should return None"},
    },
    "failing_step_checks_only_the_loss": {
        "edit": {"failing_step": [(
            "    for name, forward, backward, x in steps:",
            "    for name, forward, backward, x in steps[:1]:")]},
        # the first hidden derivation wrong after its first step fails
        # it (the order is drawn)
        "messages": {"test_failing_step": "returned None, but in this "
                                          "derivation the wrong step is "
                                          "'d"},
    },
    "failing_step_reads_the_closures": {
        # A hostile answer: look for the name of the wrong step in what the
        # step functions carry (the notebook's make_derivation keeps it in
        # a closure). The graded derivations' backward functions are
        # served stubs, whose closure holds a random token.
        "edit": {"failing_step": (
            "def failing_step(steps, tol=1e-5):\n"
            "    names = [s[0] for s in steps]\n"
            "    for _, forward, backward, _ in steps:\n"
            "        for fn in (forward, backward):\n"
            "            for cell in getattr(fn, '__closure__', None) or ():\n"
            "                v = cell.cell_contents\n"
            "                if isinstance(v, str) and v in names:\n"
            "                    return v\n"
            "            for v in getattr(fn, '__defaults__', None) or ():\n"
            "                if isinstance(v, str) and v in names:\n"
            "                    return v\n"
            "    return None\n")},
        "messages": {"test_failing_step": "the wrong step is"},
    },
}
