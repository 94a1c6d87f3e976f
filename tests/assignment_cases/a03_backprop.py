"""Simulated students of assignment 3, backpropagation (8 points).

Points: test_dW2 2, test_db2 1, test_dW1 2, test_db1 1,
test_find_wrong_gradients 2. A mistake in delta2 propagates to every
gradient below it, so it costs all four backward-pass cells, each of
which names the root cause.
"""

D2 = "d2 = (Y_hat - Y) / N * Y_hat * (1 - Y_hat)"
D1 = 'd1 = (d2 @ params["W2"]) * (1 - A1 ** 2)'

STUDENTS = {
    "missing_sigma_prime": {
        "edit": {"backward": [(D2, "d2 = (Y_hat - Y) / N")]},
        "score": 2,
        "messages": {"test_dW2": "sigma'(Z2) is missing",
                     "test_db2": "sigma'(Z2) is missing",
                     "test_dW1": "sigma'(Z2) is missing",
                     "test_db1": "sigma'(Z2) is missing"},
    },
    "missing_1_over_N": {
        "edit": {"backward": [(D2, "d2 = (Y_hat - Y) * Y_hat * (1 - Y_hat)")]},
        "score": 2,
        "messages": {"test_dW2": "1/N is missing",
                     "test_db1": "1/N is missing"},
    },
    "sign_flipped": {
        "edit": {"backward": [(D2,
                               "d2 = (Y - Y_hat) / N * Y_hat * (1 - Y_hat)")]},
        "score": 2,
        "messages": {"test_dW2": "sign is flipped",
                     "test_dW1": "sign is flipped"},
    },
    "article_error_term_dropped": {
        "edit": {"backward": [(D2, "d2 = Y_hat * (1 - Y_hat)")]},
        "score": 2,
        "messages": {"test_dW2": "error term (Y_hat - Y)/N is missing"},
    },
    "dW2_missing_transpose": {
        "edit": {"backward": [("dW2 = d2.T @ A1", "dW2 = A1.T @ d2")]},
        "score": 6,
        "messages": {"test_dW2": "transposed"},
    },
    "db2_summed_over_wrong_axis": {
        "edit": {"backward": [("db2 = d2.sum(axis=0)",
                               "db2 = d2.sum(axis=1)")]},
        "score": 7,
        "messages": {"test_db2": "wrong axis"},
    },
    "db1_averaged": {
        "edit": {"backward": [("db1 = d1.sum(axis=0)",
                               "db1 = d1.mean(axis=0)")]},
        "score": 7,
        "messages": {"test_db1": "averaged"},
    },
    "missing_tanh_prime": {
        "edit": {"backward": [(D1, 'd1 = d2 @ params["W2"]')]},
        "score": 5,
        "messages": {"test_dW1": "tanh'(Z1) is missing",
                     "test_db1": "tanh'(Z1) is missing"},
    },
    "find_hard_coded": {
        "edit": {"find_wrong_gradients": (
            "def find_wrong_gradients(backward_fn, X, Y, params):\n"
            "    return ['W1', 'W2', 'b1', 'b2']\n")},
        "score": 6,
        "messages": {"test_find_wrong_gradients": "torch.autograd"},
    },
    "find_ignores_bias_gradients": {
        "edit": {"find_wrong_gradients": [
            ("    for name in sorted(params):",
             "    for name in ['W1', 'W2']:")]},
        "score": 6,
        "messages": {"test_find_wrong_gradients": "the published "
                                                  "derivation"},
    },
}
