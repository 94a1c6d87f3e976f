"""Simulated students of assignment 6, a digit classifier graded on
held-out digits (6 points: interface 1, accuracy >= 0.90 / 0.95 / 0.97
worth 2 / 2 / 1)."""

STUDENTS = {
    # The source article's labels: random noise, nothing to learn.
    "random_labels": {
        "edit": {"train_classifier": [
            ("((X - mean) / std, y)",
             "((X - mean) / std, np.random.default_rng(seed)"
             ".permutation(y))")]},
        "score": 1,
        "messages": {"test_heldout_90": "chance level"},
    },
    # A learning rate too small for plain SGD in 30 epochs: a decent
    # classifier that misses only the top threshold (partial credit).
    "small_learning_rate": {
        "edit": {"train_classifier": [("optim.adam(3e-3)",
                                       "optim.sgd(0.01)")]},
        "score": 5,
        "messages": {"test_heldout_97": "below 0.97"},
    },
    "returns_scores": {
        "edit": {"train_classifier": [(
            "return mlp_predict(params, (X_new - mean) / std)",
            "from dlopt.mlp import mlp_forward\n"
            "        return mlp_forward(params, (X_new - mean) / std)[0]")]},
        "score": 0,
        "messages": {"test_predict_interface": "scores of shape",
                     "test_heldout_90": "scores of shape"},
    },
    "float_labels": {
        "edit": {"train_classifier": [(
            "return mlp_predict(params, (X_new - mean) / std)",
            "return mlp_predict(params, (X_new - mean) / std)"
            ".astype(float)")]},
        "score": 0,
        "messages": {"test_predict_interface": "integer class labels"},
    },
}
