"""Simulated students of assignment 5, regularization (10 points).

The named mistakes of the course (the source article's per-example L2
sum, the L1 sign, dropout not rescaled, kept with probability p, still
applied at evaluation, patience off by one, the reference called) and the
classes of real-student mistakes: an input changed in place, one dropout
mask shared by the batch (right only for a batch of one), float32
arithmetic, a list returned, torch imported. Expected totals come from
the points metadata.
"""

STUDENTS = {
    # The source article's L2 term: the norm summed once per example.
    "per_example_sum": {
        "edit": {"l2_penalty": [
            ("value = lam / (2 * N) * np.sum(W * W)",
             "value = lam / 2 * np.sum(W * W)"),
            ("dW = lam / N * W", "dW = lam * W")]},
        "messages": {"test_l2_value": "N times too large",
                     "test_l2_grad": "N times too large"},
    },
    "l1_sign_flipped": {
        "edit": {"l1_penalty": [("dW = lam / N * np.sign(W)",
                                 "dW = -lam / N * np.sign(W)")]},
        "messages": {"test_l1_grad": "sign is flipped"},
    },
    "dropout_not_rescaled": {
        "edit": {"dropout": [("mask = keep / (1.0 - p)",
                              "mask = keep.astype(float)")]},
        "messages": {"test_dropout_train": "not rescaled"},
    },
    "dropout_keeps_with_probability_p": {
        "edit": {"dropout": [("keep = rng.random(A.shape) >= p",
                              "keep = rng.random(A.shape) < p")]},
        "messages": {"test_dropout_train": "should be dropped"},
    },
    "dropout_at_eval_time": {
        "edit": {"dropout": [("if not train or p == 0:", "if p == 0:")]},
        "messages": {"test_dropout_eval": "must be the identity"},
    },
    "patience_off_by_one": {
        "edit": {"early_stopping": [("if wait >= patience:",
                                     "if wait > patience:")]},
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
        "messages": {"test_l2_value": "reference implementation",
                     "test_l2_grad": "reference implementation"},
    },
    "dropout_changes_A_in_place": {
        "edit": {"dropout": [("return A * mask, mask",
                              "A *= mask\n    return A, mask")]},
        # The values are right: the changed input is a note, not scored
        # (only the kernel can see it, and the student's code could fake it).
        "notes": {"test_dropout_train": "changed its input A in place"},
    },
    "dropout_one_mask_for_the_batch": {
        # Right for a batch of one only: every example shares the mask.
        "edit": {"dropout": [("keep = rng.random(A.shape) >= p",
                              "keep = rng.random(A.shape[1:]) >= p"),
                             ("return A * mask, mask",
                              "return A * mask, mask * np.ones_like(A)")]},
        "messages": {"test_dropout_train": "every example shares one mask"},
    },
    "l2_in_float32": {
        # The value is right to float32's precision, not float64's.
        "edit": {"l2_penalty": [("value = lam / (2 * N) * np.sum(W * W)",
                                 "value = lam / (2 * N) * np.sum("
                                 "W.astype(np.float32) ** 2)")]},
        "messages": {"test_l2_value": "compute in float64"},
    },
    "l1_gradient_as_a_list": {
        "edit": {"l1_penalty": [("return float(value), dW",
                                 "return float(value), dW.tolist()")]},
        "messages": {"test_l1_grad": "is a Python list"},
    },
    "backward_uses_torch": {
        "edit": {"dropout": [("    return dout * mask",
                              "    import torch\n"
                              "    return (torch.from_numpy(dout) * "
                              "torch.from_numpy(mask)).numpy()")]},
        "messages": {"test_dropout_backward": "torch, which is not "
                                              "available while grading"},
    },
}
