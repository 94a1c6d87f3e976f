"""Hostile and broken submissions of assignment 1, built from its release.

Each entry of :func:`corpus` is a simulated student: how to make the
submission from the released notebook and the solution's answers, the
total it must get, and the message expected in named test cells.
Assignment 1 has 9 points: test_affine 2, test_two_layer 2,
test_sigmoid_prime 2, test_affine_grads_dX/dW/db 1 each; ``two_layer``
calls ``affine``, so breaking ``affine`` costs 4 points.
"""
from __future__ import annotations

import copy
import json

A = "a01_mapping"
NO_BIAS = ("X @ W.T + b", "X @ W.T")


def gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def fill(release, answers: dict):
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if gid(cell) in answers:
            cell.source = answers[gid(cell)]
    return nb


def corpus(release, sol: dict, paths: dict) -> dict:
    """name -> dict(make=callable() -> ('nb', nb) | ('raw', name, bytes)
    | ('files', {name: bytes}), score, messages={grade_id: phrase})."""
    no_bias = dict(sol, affine=sol["affine"].replace(*NO_BIAS))

    def nb_of(answers, edit=None):
        def make():
            nb = fill(release, answers)
            if edit:
                edit(nb)
            return ("nb", nb)
        return make

    def with_prefix(code, answers=no_bias, key="affine"):
        return dict(answers, **{key: code + "\n" + answers[key]})

    def delete(*ids):
        def edit(nb):
            nb.cells = [c for c in nb.cells if gid(c) not in ids]
        return edit

    def move(nb):
        cells = nb.cells
        ta = next(c for c in cells if gid(c) == "test_affine")
        tl = next(c for c in cells if gid(c) == "test_two_layer")
        rest = [c for c in cells if c is not ta and c is not tl]
        nb.cells = [tl] + rest + [ta]

    def edit_tests(nb):
        for c in nb.cells:
            if gid(c) and gid(c).startswith("test_"):
                c.source = "pass  # the student emptied this test"

    def edit_meta(nb):
        for c in nb.cells:
            m = c.metadata.get("nbgrader", {})
            if gid(c) == "test_affine":
                m["points"] = 100
            elif gid(c) == "test_two_layer":
                m.update(grade=False, solution=True, locked=False)
            elif gid(c) == "affine":
                m.update(grade=True, points=50)
            elif gid(c) == "setup":
                m["locked"] = False

    snoop = (f"PATHS = {sorted(paths['secret'])!r}\n" + r'''
import os
found = []
for p in PATHS:
    try:
        if os.path.isdir(p):
            if os.listdir(p):
                found.append(p)
        else:
            open(p, "rb").read(1)
            found.append(p)
    except OSError:
        pass
print("SNOOPED", found)
''')
    write = (f"TARGETS = {sorted(paths['targets'])!r}\n" + r'''
import os
written = []
for p in TARGETS:
    try:
        with open(p, "a") as f:
            f.write("hacked")
        written.append(p)
    except OSError:
        pass
print("WROTE", written)
''')
    eq_true = r'''
class AlwaysEqual:
    shape = (1, 2)
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    def __array__(self, *a, **k):
        raise TypeError("no")

def affine(X, W, b):
    return AlwaysEqual()
'''
    thread = r'''
import builtins, threading, time
def spoil():
    while True:
        builtins.abs = lambda x: 0.0
        time.sleep(0.001)
threading.Thread(target=spoil, daemon=True).start()
'''
    release_json = json.dumps(fill(release, sol), indent=1).encode()
    ok_total = 9
    return {
        # controls: their grades must be intact after the others
        "perfect": dict(make=nb_of(sol), score=ok_total, messages={}),
        "stub": dict(make=nb_of({}), score=0, messages={}),
        "no_bias": dict(make=nb_of(no_bias), score=5,
                        messages={"test_affine": "bias b is missing"}),
        # runaway code
        "infinite_loop": dict(
            make=nb_of(dict(sol, sigmoid_prime="def sigmoid_prime(z):\n"
                            "    while True:\n        pass\n")),
            score=7, messages={"test_sigmoid_prime": "took longer than"}),
        "memory_bomb": dict(
            make=nb_of(dict(sol, sigmoid_prime=(
                "def sigmoid_prime(z):\n    hog = []\n    while True:\n"
                "        hog.append(bytearray(64 * 2**20))\n"))),
            score=7, messages={"test_sigmoid_prime": "MemoryError"}),
        "kills_its_kernel": dict(
            make=nb_of(dict(sol, sigmoid_prime=(
                "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
                + sol["sigmoid_prime"]))),
            score=4, messages={"test_sigmoid_prime": "not run",
                               "test_affine_grads_db": "not run"}),
        "huge_output": dict(
            make=nb_of(with_prefix(
                "for _ in range(100000):\n    print('spam ' * 40)\n"
                "print('x' * 10**7)", answers=sol)),
            score=ok_total, messages={}),
        # broken code
        "exception": dict(
            make=nb_of(dict(sol, affine="def affine(X, W, b):\n"
                            "    raise ValueError('student bug')\n")),
            score=5, messages={"test_affine": "ValueError: student bug"}),
        "syntax_error": dict(
            make=nb_of(dict(sol, sigmoid_prime="def sigmoid_prime(z):\n"
                            "    return s * (1 - s\n")),
            score=7, messages={"test_sigmoid_prime": "sigmoid_prime"}),
        # tampering with the notebook's structure
        "deleted_grade_cells": dict(
            make=nb_of(no_bias, delete("test_affine",
                                       "test_affine_grads_dW")),
            score=5, messages={"test_affine": "bias b is missing"}),
        "moved_grade_cells": dict(make=nb_of(sol, move), score=ok_total,
                                  messages={}),
        "edited_test_cells": dict(
            make=nb_of(no_bias, edit_tests), score=5,
            messages={"test_affine": "bias b is missing"}),
        "edited_metadata_points": dict(
            make=nb_of(no_bias, edit_meta), score=5,
            messages={"test_affine": "bias b is missing"}),
        # gaming the checks
        "eq_always_true": dict(
            make=nb_of(dict(sol, affine=eq_true)), score=5,
            messages={"test_affine": "AlwaysEqual"}),
        "patches_numpy": dict(
            make=nb_of(with_prefix(
                "np.allclose = lambda *a, **k: True\n"
                "np.testing.assert_allclose = lambda *a, **k: None\n"
                "np.abs = lambda x: 0 * x\n"
                "np.array_equal = lambda *a, **k: True\n")),
            score=5, messages={"test_affine": "bias b is missing"}),
        "patches_builtins": dict(
            make=nb_of(with_prefix(
                "import builtins, math\nbuiltins.abs = lambda x: 0.0\n"
                "math.isnan = lambda x: False\n"
                "isinstance = lambda *a: True\n")),
            score=5, messages={"test_affine": "bias b is missing"}),
        "patches_dlopt": dict(
            make=nb_of(with_prefix(
                "import dlopt.grading as G\n"
                "G.check_array = lambda *a, **k: None\n"
                "G._close = lambda *a, **k: True\n"
                "G.check_function.__code__ = (lambda *a, **k: None)"
                ".__code__\n"
                "check_function = lambda *a, **k: None\n"
                "check_array = lambda *a, **k: None\n")),
            score=5, messages={"test_affine": "bias b is missing"}),
        "patches_torch": dict(
            make=nb_of(with_prefix(
                "import torch\ntorch.nn.functional.linear = "
                "lambda x, w, b=None: x @ w.T\n")),
            score=5, messages={"test_affine": "bias b is missing"}),
        "patches_ipython": dict(
            make=nb_of(with_prefix(
                "ip = get_ipython()\n"
                "ip.set_custom_exc((BaseException,), "
                "lambda *a, **k: None)\n"
                "ip.input_transformers_cleanup.append("
                "lambda lines: ['pass\\n'])\n")),
            score=5, messages={"test_affine": "bias b is missing"}),
        "background_thread": dict(
            make=nb_of(with_prefix(thread)), score=5,
            messages={"test_affine": "bias b is missing"}),
        "calls_the_reference": dict(
            make=nb_of(dict(sol, affine=sol["affine"].replace(
                "return X @ W.T + b",
                "from dlopt.maps import affine_forward\n"
                "    return affine_forward(X, W, b)[0]"))),
            score=5, messages={"test_affine": "reference implementation"}),
        # reaching outside its folder
        "snoops": dict(make=nb_of(with_prefix(snoop)), score=5,
                       messages={"test_affine": "bias b is missing"}),
        "writes_outside": dict(make=nb_of(with_prefix(write, answers=sol)),
                               score=ok_total, messages={}),
        # broken files
        "corrupt_json": dict(
            make=lambda: ("raw", f"{A}.ipynb",
                          release_json[:len(release_json) // 2]),
            score=0, messages={}, problem="not a valid notebook"),
        "missing_file": dict(
            make=lambda: ("raw", "notes.txt", b"I forgot the notebook"),
            score=0, messages={}, problem="missing notebook"),
        "misnamed_file": dict(
            make=lambda: ("raw", f"{A} (1).ipynb", release_json),
            score=0, messages={}, problem=f"'{A} (1).ipynb'"),
    }
