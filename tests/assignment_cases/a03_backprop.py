"""Simulated students of assignment 3, backpropagation (8 points).

Points: test_dW2 2, test_db2 1, test_dW1 2, test_db1 1,
test_find_wrong_gradients 2. A mistake in delta2 propagates to every
gradient below it, so it costs all four backward-pass cells, each of
which names the root cause. Expected totals are computed from the points
(see assignment_cases/__init__.py).
"""

D2 = "d2 = (Y_hat - Y) / N * Y_hat * (1 - Y_hat)"
D1 = 'd1 = (d2 @ params["W2"]) * (1 - A1 ** 2)'

STUDENTS = {
    "missing_sigma_prime": {
        "edit": {"backward": [(D2, "d2 = (Y_hat - Y) / N")]},
        "messages": {"test_dW2": "sigma'(Z2) is missing",
                     "test_db2": "sigma'(Z2) is missing",
                     "test_dW1": "sigma'(Z2) is missing",
                     "test_db1": "sigma'(Z2) is missing"},
    },
    "missing_1_over_N": {
        "edit": {"backward": [(D2, "d2 = (Y_hat - Y) * Y_hat * (1 - Y_hat)")]},
        "messages": {"test_dW2": "1/N is missing",
                     "test_db2": "1/N is missing",
                     "test_dW1": "1/N is missing",
                     "test_db1": "1/N is missing"},
    },
    "sign_flipped": {
        "edit": {"backward": [(D2,
                               "d2 = (Y - Y_hat) / N * Y_hat * (1 - Y_hat)")]},
        "messages": {"test_dW2": "sign is flipped",
                     "test_db2": "sign is flipped",
                     "test_dW1": "sign is flipped",
                     "test_db1": "sign is flipped"},
    },
    "article_error_term_dropped": {
        "edit": {"backward": [(D2, "d2 = Y_hat * (1 - Y_hat)")]},
        "messages": {"test_dW2": "error term (Y_hat - Y)/N is missing",
                     "test_db2": "error term (Y_hat - Y)/N is missing",
                     "test_dW1": "error term (Y_hat - Y)/N is missing",
                     "test_db1": "error term (Y_hat - Y)/N is missing"},
    },
    "dW2_missing_transpose": {
        "edit": {"backward": [("dW2 = d2.T @ A1", "dW2 = A1.T @ d2")]},
        "messages": {"test_dW2": "transposed"},
    },
    "db2_summed_over_wrong_axis": {
        "edit": {"backward": [("db2 = d2.sum(axis=0)",
                               "db2 = d2.sum(axis=1)")]},
        "messages": {"test_db2": "wrong axis"},
    },
    "db1_averaged": {
        "edit": {"backward": [("db1 = d1.sum(axis=0)",
                               "db1 = d1.mean(axis=0)")]},
        "messages": {"test_db1": "averaged"},
    },
    "missing_tanh_prime": {
        "edit": {"backward": [(D1, 'd1 = d2 @ params["W2"]')]},
        "messages": {"test_dW1": "tanh'(Z1) is missing",
                     "test_db1": "tanh'(Z1) is missing"},
    },
    "find_hard_coded": {
        "edit": {"find_wrong_gradients": (
            "def find_wrong_gradients(backward_fn, X, Y, params):\n"
            "    return ['W1', 'W2', 'b1', 'b2']\n")},
        "messages": {"test_find_wrong_gradients": "torch.autograd"},
    },
    "find_ignores_bias_gradients": {
        "edit": {"find_wrong_gradients": [
            ("    for name in sorted(params):",
             "    for name in ['W1', 'W2']:")]},
        # fails where a bias gradient is wrong (the published derivation,
        # b2_mean, no_tanh_prime, sign_of_delta2: whichever the drawn
        # order hands first)
        "messages": {"test_find_wrong_gradients": "the wrong gradients "
                                                  "there are"},
    },
    "backward_in_float32": {
        "edit": {"backward": [("    N = X.shape[0]\n", """    N = X.shape[0]
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    params = {k: v.astype(np.float32) for k, v in params.items()}
    cache = {k: v.astype(np.float32) for k, v in cache.items()}
""")]},
        "messages": {f"test_{g}": "compute in float64"
                     for g in ("dW2", "db2", "dW1", "db1")},
    },
    "db1_first_example_only": {
        # Right for a batch of one only.
        "edit": {"backward": [("db1 = d1.sum(axis=0)", "db1 = d1[0]")]},
        "messages": {"test_db1": "first example's delta only"},
    },
    "backward_uses_torch": {
        "edit": {"backward": (
            "def backward(X, Y, params, cache):\n"
            "    import torch\n"
            "    t = {k: torch.tensor(v, requires_grad=True)\n"
            "         for k, v in params.items()}\n"
            "    A1 = torch.tanh(torch.tensor(X) @ t['W1'].T + t['b1'])\n"
            "    Y_hat = torch.sigmoid(A1 @ t['W2'].T + t['b2'])\n"
            "    L = ((Y_hat - torch.tensor(Y)) ** 2).sum() / (2 * len(X))\n"
            "    L.backward()\n"
            "    return {k: v.grad.numpy() for k, v in t.items()}\n")},
        "messages": {f"test_{g}": "imports torch, which is not available"
                     for g in ("dW2", "db2", "dW1", "db1")},
    },
    "find_returns_unsorted": {
        "edit": {"find_wrong_gradients": [
            ("    for name in sorted(params):", "    for name in params:")]},
        "messages": {"test_find_wrong_gradients": "return the names sorted"},
    },
    "find_returns_a_tuple": {
        "edit": {"find_wrong_gradients": [("    return wrong",
                                           "    return tuple(wrong)")]},
        "messages": {"test_find_wrong_gradients": "must return a list"},
    },
    "find_reads_the_closure": {
        # A hostile answer: read the mistake's name from the backward
        # function's closure (where the old hidden tests kept it). The
        # graded backward is a served stub: its closure holds a random
        # token, so this answers [] to every pass.
        "edit": {"find_wrong_gradients": (
            "def find_wrong_gradients(backward_fn, X, Y, params):\n"
            "    known = {'b2_mean': ['b2'], 'W1_extra_1_over_N': ['W1'],\n"
            "             'no_tanh_prime': ['W1', 'b1'],\n"
            "             'W2_transposed': ['W2']}\n"
            "    cells = getattr(backward_fn, '__closure__', None) or ()\n"
            "    for cell in cells:\n"
            "        if isinstance(cell.cell_contents, str):\n"
            "            return known.get(cell.cell_contents, [])\n"
            "    if getattr(backward_fn, '__name__', '') == "
            "'published_backward':\n"
            "        return ['W1', 'W2', 'b1', 'b2']\n"
            "    return []\n")},
        "messages": {"test_find_wrong_gradients": "find_wrong_gradients "
                                                  "returned [] for"},
    },
}
