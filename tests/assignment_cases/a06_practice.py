"""Simulated students of assignment 6, a digit classifier graded on
held-out MNIST digits converted to the 8x8 format (6 points: interface
and time limit 1, held-out accuracy >= 0.50 / 0.62 / 0.71 worth 2 / 2 / 1;
see coursekit/checks/a06_practice.py). The grader times the notebook's
training cell with its own clock and judges the predict it trained."""

_PREDICT = "return mlp_predict(params, (X_new - mean) / std)"

STUDENTS = {
    # The source article's labels: random noise, nothing to learn.
    "random_labels": {
        "edit": {"train_classifier": [
            ("((X - mean) / std, y)",
             "((X - mean) / std, np.random.default_rng(seed)"
             ".permutation(y))")]},
        "messages": {"test_heldout_50": "chance level"},
        "fails": ["test_heldout_62", "test_heldout_71"],
    },
    # A learning rate too small for plain SGD in the solution's 10
    # epochs: a decent classifier (about 0.67 on the held-out digits)
    # that misses only the top threshold. The same edit is the named
    # mistake of coursekit.heldout (SOLUTION_OPTIMIZER -> MISTAKE_OPTIMIZER).
    "small_learning_rate": {
        "edit": {"train_classifier": [("optim.adam(5e-3)",
                                       "optim.sgd(0.03)")]},
        "messages": {"test_heldout_71": "below 0.71"},
    },
    "returns_scores": {
        "edit": {"train_classifier": [(
            _PREDICT,
            "from dlopt.mlp import mlp_forward\n"
            "        return mlp_forward(params, (X_new - mean) / std)[0]")]},
        "messages": {"test_predict_interface": "scores of shape",
                     "test_heldout_50": "scores of shape"},
        "fails": ["test_heldout_62", "test_heldout_71"],
    },
    "float_labels": {
        "edit": {"train_classifier": [(
            _PREDICT, _PREDICT + ".astype(float)")]},
        "messages": {"test_predict_interface": "integer class labels"},
        "fails": ["test_heldout_50", "test_heldout_62", "test_heldout_71"],
    },
    # Labels as a column (M, 1): a wrong shape.
    "labels_as_a_column": {
        "edit": {"train_classifier": [(
            _PREDICT, _PREDICT + ".reshape(-1, 1)")]},
        "messages": {"test_predict_interface": "expected integer labels "
                     "of shape (20,)"},
        "fails": ["test_heldout_50", "test_heldout_62", "test_heldout_71"],
    },
    # Right only for a batch of 20 (the visible check's size): the
    # held-out batch makes predict raise, a hidden failure.
    "batch_of_twenty_only": {
        "edit": {"train_classifier": [(
            "(X_new - mean) / std)",
            "((X_new - mean) / std).reshape(20, 64))")]},
        "messages": {"test_heldout_50": "predict raised ValueError on 4000 "
                     "held-out digits"},
        "fails": ["test_heldout_62", "test_heldout_71"],
    },
    # A list of integer labels is accepted (accuracy is well defined).
    "predict_returns_a_list": {
        "edit": {"train_classifier": [(_PREDICT, _PREDICT + ".tolist()")]},
        "messages": {},
    },
    # Right only on the digits it trained on: an exact lookup table of
    # X_dev, label 0 for anything else. The visible check (20 training
    # digits) passes; on held-out digits it is at chance level.
    "lookup_table": {
        "edit": {"train_classifier": (
            "def train_classifier(X, y, seed=0):\n"
            "    table = {row.tobytes(): int(label) for row, label in "
            "zip(X, y)}\n\n"
            "    def predict(X_new):\n"
            "        return np.array([table.get(row.tobytes(), 0) for row "
            "in X_new])\n\n"
            "    return predict\n")},
        "messages": {"test_heldout_50": "chance level"},
        "fails": ["test_heldout_62", "test_heldout_71"],
    },
    # The nearest training digit's label (1-NN over X_dev): it memorises
    # the training set, yet generalises to the other writers about as
    # well as the solution (0.77 on the converted MNIST digits).
    "nearest_neighbour": {
        "edit": {"train_classifier": (
            "def train_classifier(X, y, seed=0):\n"
            "    X, y = X.copy(), y.copy()\n\n"
            "    def predict(X_new):\n"
            "        d = ((X_new ** 2).sum(1)[:, None] - 2 * X_new @ X.T\n"
            "             + (X ** 2).sum(1)[None, :])\n"
            "        return y[np.argmin(d, axis=1)]\n\n"
            "    return predict\n")},
        "messages": {},
    },
    # Training takes 23 s, and the kernel's clock is made to say 0.5 s:
    # the notebook's own timing prints a fast run, the grader's clock
    # catches it.
    "too_slow_with_a_lying_clock": {
        "edit": {"train_classifier": [(
            "    mean = X.mean(axis=0)\n",
            "    import time as _time\n"
            "    _start = _time.perf_counter()\n"
            "    _time.sleep(23)\n"
            "    _time.perf_counter = lambda: _start + 0.5\n"
            "    mean = X.mean(axis=0)\n")]},
        "messages": {"test_predict_interface": "grader's clock"},
        "fails": ["test_heldout_50", "test_heldout_62", "test_heldout_71"],
    },
    # Good on its first two trainings, useless from the third on: the
    # submission is trained once (the notebook's cell, timed by the
    # grader) and every threshold cell judges that one run (and one
    # sample), so the result is full marks.
    "worse_when_trained_again": {
        "edit": {"train_classifier": [(
            "\n    return predict",
            "\n    global _calls\n"
            "    _calls = globals().get('_calls', 0) + 1\n"
            "    if _calls > 2:\n"
            "        return lambda X_new: np.zeros(len(X_new), dtype=int)\n"
            "    return predict")]},
        "messages": {},
    },
}
