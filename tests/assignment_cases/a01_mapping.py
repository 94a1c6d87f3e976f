"""Simulated students of assignment 1."""

STUDENTS = {
    "no_bias": {
        "edit": {"affine": [("X @ W.T + b", "X @ W.T")]},
        # two_layer uses affine, so it fails too.
        "messages": {"test_affine": "bias b is missing"},
        "fails": ["test_two_layer"],
    },
    "swapped_activations": {
        "edit": {"two_layer": [
            ("A1 = np.tanh(affine(X, W1, b1))",
             "A1 = sigmoid(affine(X, W1, b1))"),
            ("return sigmoid(affine(A1, W2, b2))",
             "return np.tanh(affine(A1, W2, b2))")]},
        # a tanh output can land in (0, 1) on the visible inputs, or not
        # (the seed is per submission): either message says "swapped".
        "messages": {"test_two_layer": "swapped"},
    },
    "sigma_of_z_is_z": {
        "edit": {"sigmoid_prime": [("s = sigmoid(z)", "s = z")]},
        "messages": {"test_sigmoid_prime": "sigma(0) = 1/2"},
    },
    "averaged_bias_gradient": {
        "edit": {"affine_grads": [("db = G.sum(axis=0)",
                                   "db = G.mean(axis=0)")]},
        "messages": {"test_affine_grads_db": "averaged over the batch"},
    },
    "transposed_dW": {
        "edit": {"affine_grads": [("dW = G.T @ X", "dW = X.T @ G")]},
        "messages": {"test_affine_grads_dW": "shape of W"},
    },
    "calls_the_reference": {
        "edit": {"affine": [("return X @ W.T + b",
                             "from dlopt.maps import affine_forward\n"
                             "    return affine_forward(X, W, b)[0]")]},
        # two_layer calls affine, so it loses its points too.
        "messages": {"test_affine": "the course's reference implementation"},
        "fails": ["test_two_layer"],
    },
    "wrong_only_for_a_batch_of_one": {
        # Right for N = 1 only: the hidden checks use other batch sizes
        # (the first one a batch of 2 to 6 examples, W of shape (4, 4)).
        "edit": {"affine": [("return X @ W.T + b",
                             "return (X @ W.T + b)[:1]")]},
        "messages": {"test_affine": "notebook does not show): affine(X, "
                                    "W, b) has shape (1, 4); expected ("},
        "fails": ["test_two_layer"],
    },
    "affine_in_float32": {
        # Right to float32's precision: told to compute in float64 (never
        # shown two identical-looking numbers); two_layer, built on
        # affine, returns float32 too.
        "edit": {"affine": [("return X @ W.T + b",
                             "f = np.float32\n"
                             "    return X.astype(f) @ W.T.astype(f) + "
                             "b.astype(f)")]},
        "messages": {"test_affine": "compute in float64",
                     "test_two_layer": "compute in float64"},
    },
}
