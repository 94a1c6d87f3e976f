"""Simulated students of assignment 5, regularization (10 points)."""

STUDENTS = {
    # The source article's L2 term: the norm summed once per example.
    "per_example_sum": {
        "edit": {"l2_penalty": [
            ("value = lam / (2 * N) * np.sum(W * W)",
             "value = lam / 2 * np.sum(W * W)"),
            ("dW = lam / N * W", "dW = lam * W")]},
        "score": 8,
        "messages": {"test_l2_value": "N times too large",
                     "test_l2_grad": "N times too large"},
    },
    "l1_sign_flipped": {
        "edit": {"l1_penalty": [("dW = lam / N * np.sign(W)",
                                 "dW = -lam / N * np.sign(W)")]},
        "score": 9,
        "messages": {"test_l1_grad": "sign is flipped"},
    },
    "dropout_not_rescaled": {
        "edit": {"dropout": [("mask = keep / (1.0 - p)",
                              "mask = keep.astype(float)")]},
        "score": 8,
        "messages": {"test_dropout_train": "not rescaled"},
    },
    "dropout_keeps_with_probability_p": {
        "edit": {"dropout": [("keep = rng.random(A.shape) >= p",
                              "keep = rng.random(A.shape) < p")]},
        "score": 8,
        "messages": {"test_dropout_train": "should be dropped"},
    },
    "dropout_at_eval_time": {
        "edit": {"dropout": [("if not train or p == 0:", "if p == 0:")]},
        "score": 9,
        "messages": {"test_dropout_eval": "must be the identity"},
    },
    "patience_off_by_one": {
        "edit": {"early_stopping": [("if wait >= patience:",
                                     "if wait > patience:")]},
        "score": 8,
        "messages": {"test_early_stopping": "one epoch late"},
    },
    "calls_the_reference": {
        "edit": {"l2_penalty": [(
            "value = lam / (2 * N) * np.sum(W * W)\n"
            "    dW = lam / N * W\n"
            "    return float(value), dW",
            "from dlopt.regularization import l2_penalty as ref\n"
            "    value, grads = ref({'W1': W}, lam, N)\n"
            "    return value, grads['W1']")]},
        "score": 8,
        "messages": {"test_l2_value": "reference implementation",
                     "test_l2_grad": "reference implementation"},
    },
}
