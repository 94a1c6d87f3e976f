"""Hostile and broken submissions for ANY assignment, built from its release.

Each attack class of the issue "Grading a student cannot game" is one or
more submissions, made from the released notebook and the solution's
answers by rewriting the first answer cell (``target``, which defines the
function ``fname`` that the next test cell, ``test``, checks):

* leaks: directory descriptors walked with ``openat``, the environment and
  every ``/proc/*/environ``/``cmdline``/``mem``, the course's paths;
* cross-student: a background process (``fork`` + ``setsid``, descriptors
  closed) that tries to kill or poison the kernels graded after it; a
  perfect student (``zz_victim``) is graded after it;
* verdict in the kernel: IPython patched at class level, errors cleared in
  ``post_run_cell``, custom exception handlers, a fake ``execute_result``,
  ``__code__`` rebinding, expected values read from caller frames and
  closures, objects whose ``__eq__``/``__float__``/``__array__`` lie, fake
  ``numpy``/``time``/``sklearn`` modules;
* forbidden tools: ``torch``, ``torch.optim``, ``torch.autograd`` and the
  dlopt modules the assignment forbids;
* feedback: ``In``/``Out``/``%history`` printed from an answer cell and an
  added cell, and nbgrader's markers inside an answer cell;
* (a02, a03) the wrong step of a derivation found without evaluating
  what the answer is handed: bytecode fingerprints, names, the checks'
  public order (``ASSIGNMENT_CASES``);
* (``full=True``, one assignment: the defences below are the sandbox's,
  the same for every assignment) the cross-student daemon and its victim,
  nbgrader's markers, a display updated into the verdict, symbolic links
  beside the notebook, an answer of millions of items; runaway and broken
  code, a tampered notebook structure and broken files.

Every case says what it must score (computed from the points metadata)
and, where it applies, the phrase its failure message must contain.
"""
from __future__ import annotations

import ast
import copy
import json

from coursekit import nbmeta

SECRET_ENV = "COURSEKIT_HOSTILE_SECRET"

LINKED = r'''
import os, re as __re
__got = []
for __n in ("environ.txt", "solution.txt"):
    try:
        __t = open(__n, "rb").read().decode(errors="replace")
    except OSError:
        continue
    if __t:
        __got.append((__n, bool(__re.search("hunter2-[0-9]+-[0-9]+", __t)),
                      len(__t)))
print("LINKED", __got)
'''


def fill(release, answers: dict):
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if nbmeta.grade_id(cell) in answers:
            cell.source = answers[nbmeta.grade_id(cell)]
    return nb


def layout(release, sol):
    """target answer cell, its first function, the next test cell."""
    cells = release.cells
    for i, c in enumerate(cells):
        if nbmeta.is_answer(c) and c.cell_type == "code":
            tree = ast.parse(sol[nbmeta.grade_id(c)])
            fnames = [n.name for n in tree.body
                      if isinstance(n, ast.FunctionDef)]
            if not fnames:
                continue
            test = next(nbmeta.grade_id(t) for t in cells[i + 1:]
                        if nbmeta.is_test(t))
            return nbmeta.grade_id(c), fnames[-1], test
    raise ValueError("no answer cell defining a function")


def points(release) -> dict:
    return {nbmeta.grade_id(c): nbmeta.points(c)
            for c in nbmeta.test_cells(release)}


LEAK = r'''
import os, re as __re
__found = []
for __fd in range(0, 1024):
    try:
        __names = os.listdir(__fd)
    except OSError:
        continue
    __found.append(("fd", __fd, __names[:3]))
    __d = __fd
    for __up in range(12):      # climb with openat("..") below the mounts
        try:
            __d = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=__d)
            __ls = os.listdir(__d)
        except OSError:
            break
        if any(n in __ls for n in ("solutions", ".git", "gradebook.db",
                                   "coursekit", "submitted")):
            __found.append(("escape", __fd, __ls[:8]))
__text = repr(dict(os.environ))
for __p in ["/proc/self/environ", "/proc/1/environ", "/proc/1/cmdline"] + [
        f"/proc/{p}/{w}" for p in os.listdir("/proc") if p.isdigit()
        for w in ("environ", "cmdline")]:
    try:
        __text += open(__p, "rb").read().decode(errors="replace")
    except OSError:
        pass
try:                              # the kernel's own memory
    with open("/proc/self/maps") as __m, open("/proc/self/mem", "rb") as __mem:
        for __line in __m:
            __a, __b = (int(x, 16) for x in __line.split()[0].split("-"))
            if "r" not in __line.split()[1] or __b - __a > 2**28:
                continue
            try:
                __mem.seek(__a)
                __chunk = __mem.read(__b - __a)
            except (OSError, OverflowError, ValueError):
                continue
            if __re.search(rb"hunter2-[0-9]+-[0-9]+", __chunk):
                __found.append(("memory", __line.split()[-1]))
except OSError:
    pass
if __re.search("hunter2-[0-9]+-[0-9]+", __text):
    __found.append(("environment", "the grader's secret"))
for __p in PATHS:
    try:
        if os.path.isdir(__p):
            if os.listdir(__p):
                __found.append(("path", __p))
        else:
            open(__p, "rb").read(1)
            __found.append(("path", __p))
    except OSError:
        pass
print("LEAKED", __found)
'''

DAEMON = r'''
import os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(3, 4096)
        __end = time.time() + 90
        while time.time() < __end:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            for __d in ("/tmp", "/tmp/student", os.getcwd(), "/dev/shm"):
                try:
                    with open(os.path.join(__d, "numpy.py"), "w") as __f:
                        __f.write("raise SystemExit('poisoned')\n")
                except OSError:
                    pass
            time.sleep(0.02)
        os._exit(0)
    os._exit(0)
'''

PATCH_IPYTHON = r'''
from IPython.core.interactiveshell import InteractiveShell
__orig = InteractiveShell.run_code
async def __run_code(self, code_obj, result=None, *, async_=False):
    try:
        return await __orig(self, code_obj, result, async_=async_)
    except BaseException:
        return False
InteractiveShell.run_code = __run_code
InteractiveShell.showtraceback = lambda self, *a, **k: None
__ip = get_ipython()
__ip.set_custom_exc((BaseException,), lambda *a, **k: None)
def __clear(result):
    result.error_in_exec = None
    result.error_before_exec = None
__ip.events.register("post_run_cell", __clear)
import sys
class __Hook:
    def __call__(self, value):
        print("Out: 100.0")
sys.displayhook = __Hook()
try:
    import dlopt.grading as __G
    __G.check_array.__code__ = (lambda *a, **k: None).__code__
    __G.check_function.__code__ = (lambda *a, **k: None).__code__
except Exception:
    pass
'''

LIAR = r'''
import sys, gc
import numpy as __np

class __Liar(tuple):
    shape = (1,)
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __float__(self): return 0.0
    def __array__(self, *a, **k): return __np.zeros(1)
    def __len__(self): return 2
    def __getitem__(self, i): return self
    def __iter__(self): return iter((self, self))

def {fname}(*args, **kwargs):
    # the biggest array in any caller's frame or closure, or anywhere
    best = None
    f = sys._getframe(1)
    while f is not None:
        for v in list(f.f_locals.values()):
            if isinstance(v, __np.ndarray) and (best is None
                                               or v.size > best.size):
                best = v
        f = f.f_back
    for o in gc.get_objects():
        if type(o) is __np.ndarray and (best is None or o.size > best.size):
            best = o
    return __Liar() if best is None else (best, __Liar())
'''

FAKE_MODULES = r'''
import sys, types
for __name in ("numpy", "time", "sklearn", "json", "base64"):
    __fake = types.ModuleType(__name)
    __fake.__getattr__ = lambda attr: (lambda *a, **k: 1.0)
    sys.modules[__name] = __fake
'''

FORBIDDEN = r'''
__tried = {{}}
for __m in {mods!r}:
    try:
        __import__(__m)
        __tried[__m] = "imported"
    except ImportError as __e:
        __tried[__m] = str(__e)[:80]
print("FORBIDDEN", __tried)
import {first}
'''

HISTORY = r'''
print("HISTORY", In, Out, _ih)
get_ipython().run_line_magic("history", "-g")
'''

MARKERS = r'''
### BEGIN HIDDEN TESTS
### BEGIN SOLUTION
# a student pasted nbgrader's markers into an answer cell
'''


def corpus(A, release, sol, paths, forbid, full=False) -> dict:
    """name -> dict(make=..., score=..., messages=..., [problem=...])."""
    target, fname, test = layout(release, sol)
    pts = points(release)
    total = sum(pts.values())
    stub = {}

    def nb_of(answers, edit=None):
        def make():
            nb = fill(release, answers)
            if edit:
                edit(nb)
            return ("nb", nb)
        return make

    def injected(code, base=None, key=target):
        base = dict(base if base is not None else stub)
        body = base.get(key, next(c.source for c in release.cells
                                  if nbmeta.grade_id(c) == key))
        return dict(base, **{key: code + "\n" + body})

    def added_cell(code):
        def edit(nb):
            i = next(k for k, c in enumerate(nb.cells)
                     if nbmeta.grade_id(c) == test)
            import nbformat
            nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
        return edit

    # The secret has the form hunter2-<digits>-<digits>; the attack looks
    # for that pattern (its own code never matches it).
    leak = f"PATHS = {sorted(paths['secret'])!r}\n" + LEAK
    mods = ["torch", "torch.optim", "torch.autograd"] + \
        [m for m in forbid if m.startswith("dlopt")]
    first = next(m for m in mods if m != "torch") if len(mods) > 1 \
        else "torch"
    # A named tuple whose field is called ``__array_interface__``: the
    # grader's Record answered numpy's (instance) lookup of that name, so
    # np.asarray in a check read the grader's memory at an address the
    # student chose (here 8: a crash of the grader process).
    ARRAY_INTERFACE = (
        f"class __Evil(tuple):\n"
        f"    _fields = ('__array_interface__',)\n"
        f"    __array_interface__ = dict(shape=(4,), typestr='<f8', "
        f"data=(8, False), version=3)\n"
        f"def {fname}(*args, **kwargs):\n"
        f"    return [__Evil(), __Evil()]\n")
    UPDATE = (
        "\nimport sys as __sys\n"
        "from IPython.display import display as __display\n"
        "__orig_{fname} = {fname}\n"
        "def {fname}(*args, **kwargs):\n"
        "    print('dropped', file=__sys.stderr, flush=True)\n"
        "    __display('shown', display_id='ck-evil')\n"
        "    return __orig_{fname}(*args, **kwargs)\n")
    cases = {
        # controls: their grades must be intact after the others
        "perfect": dict(make=nb_of(sol), score=total, messages={}),
        "stub": dict(make=nb_of({}), score=0.0, messages={}),
        # 1. the sandbox leaks the course
        "leaks": dict(make=nb_of(injected(leak)), score=0.0, messages={},
                      printed={target: "LEAKED []"}),
        # 3. the verdict reached inside the student's process
        "patches_ipython": dict(
            make=nb_of(injected(PATCH_IPYTHON),
                       added_cell("raise RuntimeError('cleared?')")),
            score=0.0, messages={}),
        "lies_with_objects": dict(
            make=nb_of(dict(stub, **{target: LIAR.format(fname=fname)})),
            score=0.0, messages={}),
        "fake_modules": dict(make=nb_of({}, added_cell(FAKE_MODULES)),
                             score=0.0, messages={}),
        # 4. forbidden tools
        "forbidden_tools": dict(
            make=nb_of(injected(FORBIDDEN.format(mods=mods, first=first))),
            score=0.0, messages={},
            printed={target: "not available in this assignment"}),
        # 5. feedback leaks
        "prints_history": dict(
            make=nb_of(injected(HISTORY, base=sol),
                       added_cell(HISTORY)),
            score=total, messages={}),
        # 6. the grader's own process (a check reading student data)
        "array_interface": dict(
            make=nb_of(dict(stub, **{target: ARRAY_INTERFACE})),
            score=0.0, messages={}),
    }
    # 3. a report made in the kernel, faked there: every comparison the
    # kernel could make says "equal", and exec (with which the harness
    # runs the grader's public drivers) is shadowed in the namespace.
    # Nothing the kernel reports is scored, so this earns nothing.
    cases["fakes_kernel_reports"] = dict(
        make=nb_of({}, first_cell(FAKE_REPORTS)), score=0.0, messages={})
    extra = ASSIGNMENT_CASES.get(A)
    if extra:
        cases.update(extra(release, sol, pts, nb_of))
    if not full:
        return cases
    # The sandbox's own defences: the same launcher, exchange copy and
    # output path whatever the assignment (each assignment's checks,
    # forbidden modules and answers are attacked above, for every one).
    cases.update({
        # 2. one student can hurt another (graded before zz_victim)
        "aa_daemon": dict(make=nb_of(injected(DAEMON)), score=0.0,
                          messages={}),
        "zz_victim": dict(make=nb_of(sol), score=total, messages={}),
        # 5. feedback forged with nbgrader's own markers
        "nbgrader_markers": dict(make=nb_of(injected(MARKERS)), score=0.0,
                                 messages={}),
        # a display id shown in a test cell, updated from a later cell:
        # nbclient wrote into the output at the old index, in outputs the
        # verdict had rewritten (IndexError: the notebook was not graded;
        # or the data of the verdict's own partial-credit output)
        "updates_verdict": dict(
            make=nb_of(dict(sol, **{target: sol[target] + UPDATE.format(
                fname=fname)}), added_cell(
                    "from IPython.display import update_display\n"
                    "update_display({'text/plain': '100'}, raw=True, "
                    "display_id='ck-evil')\n")),
            score=total, messages={}),
        # a symbolic link in the submitted folder: nbgrader copies the
        # folder's other files (shutil.copy follows links, as the grader)
        # into the autograded folder, which the kernel gets as its own
        "symlinked_files": dict(
            make=lambda: ("nb", fill(release, injected(LINKED)),
                {"environ.txt": "/proc/self/environ",
                 "solution.txt": sorted(paths["secret"])[0]}),
            score=0.0, messages={}, printed={target: "LINKED []"},
            problem="symbolic link", graded=True),
        # text that nbconvert renders in quadratic time (a line of `[`
        # took 238 s at 200,000 in strip_files_prefix; pygments and
        # mistune are slow on others): one student stalled the feedback
        # run of the whole class. The grade is the stub's, and the
        # feedback comes, shortened (test_hostile).
        "stalls_feedback": dict(
            make=nb_of(stub, stall_cells()), score=0.0, messages={}),
        # files submitted beside the notebook that run as a kernel
        # starts (IPython's startup folder and config, Jupyter's config,
        # a module shadowing ipykernel_launcher): none runs, the grade
        # is the honest code's
        "startup_files": dict(
            make=lambda: ("nb", fill(release, injected(SAW_STARTUP,
                                                       base=sol)),
                          {}, startup_files()),
            score=total, messages={}, printed={target: "NO STARTUP"}),
        # millions of tiny items in one answer (under the 64 MB message
        # cap): the grader's JSON parser held ~1 GB before any check
        "many_items": dict(
            make=nb_of(dict(stub, **{target: (
                f"def {fname}(*args, **kwargs):\n"
                f"    return [None] * 3_000_000\n")})),
            score=0.0, messages={}),
    })
    release_json = json.dumps(fill(release, sol), indent=1).encode()
    rest = total - pts[test]

    def delete_tests(nb):
        nb.cells = [c for c in nb.cells if not nbmeta.is_test(c)]

    def move_tests(nb):
        tests = [c for c in nb.cells if nbmeta.is_test(c)]
        nb.cells = [c for c in nb.cells if not nbmeta.is_test(c)] + \
            tests[::-1]

    def empty_tests(nb):
        for c in nb.cells:
            if nbmeta.is_test(c):
                c.source = "pass  # the student emptied this test"

    def edit_meta(nb):
        for c in nb.cells:
            m = c.metadata.get("nbgrader", {})
            if nbmeta.is_test(c):
                m["points"] = 100
            elif nbmeta.grade_id(c) == target:
                m.update(grade=True, points=50)
            elif nbmeta.is_locked(c):
                m["locked"] = False

    loop = f"def {fname}(*args, **kwargs):\n    while True:\n        pass\n"
    bomb = (f"def {fname}(*args, **kwargs):\n    hog = []\n    while True:"
            f"\n        hog.append(bytearray(64 * 2**20))\n")
    cases.update({
        "infinite_loop": dict(make=nb_of(dict(sol, **{target: loop})),
                              score=None, messages={test: "did not finish"},
                              at_most=rest),
        "memory_bomb": dict(make=nb_of(dict(sol, **{target: bomb})),
                            score=None, messages={test: "Error"},
                            at_most=rest),
        "kills_its_kernel": dict(
            # a crash (segmentation fault); SIGKILL to itself would be
            # ignored: the kernel is PID 1 of its namespace
            make=nb_of(injected("import ctypes\nctypes.string_at(0)\n",
                                base=sol)),
            score=0.0, messages={test: "not run"}),
        "huge_output": dict(
            make=nb_of(injected("for _ in range(100000):\n"
                                "    print('spam ' * 40)\n"
                                "print('x' * 10**7)", base=sol)),
            score=total, messages={}, small=True),
        "exception": dict(
            make=nb_of(dict(sol, **{target: (
                f"def {fname}(*args, **kwargs):\n"
                f"    raise ValueError('student bug')\n")})),
            score=None, messages={test: "ValueError: student bug"},
            at_most=rest),
        "syntax_error": dict(
            make=nb_of(dict(sol, **{target: f"def {fname}(:\n"})),
            score=None, messages={test: ""}, at_most=rest),
        "writes_outside": dict(
            make=nb_of(injected(
                f"TARGETS = {sorted(paths['targets'])!r}\n"
                "import os\nwritten = []\nfor p in TARGETS:\n"
                "    try:\n        open(p, 'a').write('hacked')\n"
                "        written.append(p)\n    except OSError:\n"
                "        pass\nprint('WROTE', written)\n", base=sol)),
            score=total, messages={}, printed={target: "WROTE []"}),
        "deleted_test_cells": dict(make=nb_of(sol, delete_tests),
                                   score=total, messages={}),
        "moved_test_cells": dict(make=nb_of(sol, move_tests), score=total,
                                 messages={}),
        "emptied_tests_stub": dict(make=nb_of({}, empty_tests), score=0.0,
                                   messages={}),
        "edited_metadata_stub": dict(make=nb_of({}, edit_meta), score=0.0,
                                     messages={}, max_score=total),
        "corrupt_json": dict(
            make=lambda: ("raw", f"{A}.ipynb",
                          release_json[:len(release_json) // 2]),
            score=0.0, messages={}, problem="not a valid notebook"),
        "missing_file": dict(
            make=lambda: ("raw", "notes.txt", b"I forgot the notebook"),
            score=0.0, messages={}, problem="missing notebook"),
        "misnamed_file": dict(
            make=lambda: ("raw", f"{A} (1).ipynb", release_json),
            score=0.0, messages={}, problem=f"'{A} (1).ipynb'"),
    })
    return cases


# -- reports made in the kernel, faked there (every assignment; a05) ---
FAKE_REPORTS = (
    "import builtins as __b\n"
    "import numpy as __np\n"
    "__np.array_equal = lambda *a, **k: True\n"
    "__np.allclose = lambda *a, **k: True\n"
    "__real_exec = __b.exec\n"
    "def exec(code, g=None, l=None):\n"
    "    __seen.append(code)          # every driver the grader sends\n"
    "    return __real_exec(code, g, l)\n"
    "__seen = []\n"
    "__b.exec = exec\n")


# Files that would run as the kernel starts if its HOME, IPython's and
# Jupyter's folders or sys.path were the submission's (they are new and
# empty, and the kernel starts with python -P: coursekit.sandbox).
STARTUP = "import time\n_pre = 'startup ran'\n{then}\n"
STARTUP_FILES = {
    ".ipython/profile_default/startup/00-train.py": STARTUP,
    ".ipython/profile_default/ipython_kernel_config.py":
        "c.IPKernelApp.exec_lines = ['_pre = \"config ran\"']\n",
    ".jupyter/ipython_kernel_config.py":
        "c.IPKernelApp.exec_lines = ['_pre = \"config ran\"']\n",
    "ipykernel_launcher.py": STARTUP + (
        "from ipykernel import kernelapp as app\napp.launch_new_instance()"
        "\n"),
}


def startup_files(then: str = "") -> dict:
    """The files (relative path -> text), running ``then`` as well."""
    return {k: v.replace("{then}", then) for k, v in STARTUP_FILES.items()}


SAW_STARTUP = ("print('STARTUP RAN' if '_pre' in globals() else "
               "'NO STARTUP')\n")


def stall_cells():
    """An edit: cells that are slow to render, after the first cell."""
    def edit(nb):
        import nbformat
        v4 = nbformat.v4
        cells = [v4.new_markdown_cell("[" * 300_000),
                 v4.new_markdown_cell("[a](" * 100_000),
                 v4.new_code_cell("x = 1\n" + "*" * 200_000),
                 v4.new_code_cell("for _ in range(30):\n"
                                  "    print('![' * 10_000)")]
        nb.cells[1:1] = cells
    return edit


def first_cell(code):
    """An edit: ``code`` in a new first cell of the notebook."""
    def edit(nb):
        import nbformat
        nb.cells.insert(0, nbformat.v4.new_code_cell(code))
    return edit


def a05_cases(release, sol, pts, nb_of) -> dict:
    mutates = sol["dropout"].replace("return A * mask, mask",
                                     "A *= mask\n    return A, mask")
    assert mutates != sol["dropout"], "a05's solution changed: update"
    total = sum(pts.values())
    return {
        # dropout changes its input A in place and the notebook fakes the
        # kernel's report of it: the grade is the honest mutating
        # student's (full: the values are right, the note is not scored)
        "a05_fakes_in_place_report": dict(
            make=nb_of(dict(sol, dropout=mutates), first_cell(FAKE_REPORTS)),
            score=total, messages={}),
    }


# -- a06: the experiment judged on the notebook's own training --------
# The hostile run grades a06 on private held-out digits (the public ones
# jittered by a secret seed, tests/test_hostile.py): without them, the
# public table below would get full marks (docs/grading.md).
TABLE = '''
import hashlib as _hashlib

# Hashes (blake2b, 6 bytes) of MNIST's test digits as the public
# converter makes them, and their labels: the "held-out" set, predicted
# without training.
_H = {hashes!r}
_L = {labels!r}
_TABLE = {{_H[12 * i:12 * i + 12]: int(_L[i]) for i in range(len(_L))}}


def train_classifier(X, y, seed=0):
    def predict(X_new):
        counts = np.rint(np.asarray(X_new) * 16).astype(np.uint8)
        return np.array([_TABLE.get(_hashlib.blake2b(
            r.tobytes(), digest_size=6).hexdigest(), 0) for r in counts],
            dtype=np.int64)

    return predict
'''


def public_table() -> str:
    """The answer cell of a notebook that ships the public held-out
    digits' hashes and labels (about 130 KB of source)."""
    import hashlib

    import numpy as np

    from coursekit.checks import a06_practice as ck
    X, y = ck.heldout_digits()
    counts = np.rint(X * 16).astype(np.uint8)
    hashes = "".join(hashlib.blake2b(r.tobytes(), digest_size=6).hexdigest()
                     for r in counts)
    return TABLE.format(hashes=hashes, labels="".join(map(str, y)))


def a06_cases(release, sol, pts, nb_of) -> dict:
    import nbformat
    slow = sol["train_classifier"].replace("def train_classifier(",
                                           "def _slow_train(")
    # A training longer than the 20 s limit done in untimed cells before
    # the locked run_training cell (five cells of 4.5 s stand for it:
    # each is under the 5 s cell limit of the hostile run) and in the
    # answer cell: train_classifier returns it at once.
    pretrain = slow + (
        "\n\n"
        "_pre = _slow_train(X_dev.copy(), y_dev.copy(), seed=0)\n\n\n"
        "def train_classifier(X, y, seed=0):\n    return _pre\n")

    def more_sleep(nb):
        i = next(k for k, c in enumerate(nb.cells)
                 if nbmeta.grade_id(c) == "train_classifier")
        for _ in range(5):
            nb.cells.insert(i, nbformat.v4.new_code_cell(
                "import time\ntime.sleep(4.5)"))
    # The same training done by files that would run as the kernel
    # starts (before the first cell): they do not run, and the kernel's
    # start is on the grader's clock anyway (coursekit.execute).
    at_start = startup_files(
        "import numpy as np\n"
        "from dlopt.data import digits_8x8\n"
        "_X, _y = digits_8x8()\n"
        "_dev = np.random.default_rng(606).permutation(len(_y))[:1300]\n"
        "exec(open('_train.py').read())\n"
        "_pre = _slow_train(_X[_dev] / 16.0, _y[_dev], seed=0)\n"
        "time.sleep(25)   # stands for a training longer than the limit")
    assert "SPLIT_SEED, N_DEV = 606, 1300" in next(
        c.source for c in release.cells if nbmeta.grade_id(c) == "setup"), \
        "a06's split changed: update"
    startup = "def train_classifier(X, y, seed=0):\n    return _pre\n"

    def startup_nb():
        nb = fill(release, dict(sol, train_classifier=startup))
        return ("nb", nb, {}, dict(at_start, **{"_train.py": slow}))
    # The same pretraining, with the grader's watch of run_training made
    # to fail: the harness reports a NotImplementedError when it names
    # the type of the notebook's predict (once), which the watch did not
    # catch; the graded cells then trained again, timing only that call
    # (train_classifier returns at once): 6/6 however long the
    # pretraining took, so none is added here (it cost 22.5 s of CI).
    hook_fails = pretrain.replace(
        "_pre = _slow_train(", "_pre = _Pred(_slow_train(").replace(
        "seed=0)\n\n\ndef", "seed=0))\n\n\ndef")
    hook_fails = hook_fails.replace("\n\n_pre = ", UNNAMED_TYPE + "\n_pre = ",
                                    1)
    assert hook_fails.count("_Pred(") == 2, "a06_pretrained changed: update"
    # A training the held-out prediction waits for: predict answers the
    # 20 training digits (and the notebook's X_dev) at once and waits for
    # a training thread only on other digits. The cells before
    # run_training take 16.5 s of the notebook's clock (so the first
    # prediction is within the limit) and the thread ends 20.6 s after
    # the first cell (under the 5 s call limit of the hostile run): the
    # notebook took longer than 20 s, but only the first prediction's
    # wait was counted (6/6).
    lazy = slow + LAZY_THREAD

    def clock_cells(nb):
        more_sleep_until(nb, 16.5)
    return {
        "a06_hook_fails": dict(
            make=nb_of(dict(sol, train_classifier=hook_fails)),
            score=0.0, messages={}),
        "a06_trains_at_heldout": dict(
            make=nb_of(dict(sol, train_classifier=lazy), clock_cells),
            score=0.0, messages={"test_heldout_50": "training took"}),
        # training done by files that would run as the kernel starts
        "a06_trains_at_kernel_start": dict(make=startup_nb, score=0.0,
                                           messages={}),
        # a training longer than the limit, done before the timed cell
        "a06_pretrained": dict(
            make=nb_of(dict(sol, train_classifier=pretrain), more_sleep),
            score=0.0, messages={}),
        # the public held-out digits looked up, not learned: on private
        # digits only the interface point (it returns integer labels)
        "a06_public_table": dict(
            make=nb_of(dict(sol, train_classifier=public_table())),
            score=float(pts["test_predict_interface"]),
            messages={"test_heldout_50": "chance level"}),
    }


# a06: a class whose type cannot be named once (its metaclass's
# ``__module__`` raises NotImplementedError the first time it is read: by
# the harness, when the grader fetches ``predict`` after run_training).
UNNAMED_TYPE = '''

class _Unnamed(type):
    _n = [0]

    @property
    def __module__(cls):
        _Unnamed._n[0] += 1
        if _Unnamed._n[0] == 1:
            raise NotImplementedError("not now")
        return "__main__"


class _Pred(metaclass=_Unnamed):
    def __init__(self, f):
        self.f = f

    def __call__(self, X):
        return self.f(X)
'''

# a06: train_classifier starts a thread and returns; predict waits for it
# only on digits other than the 20 training ones and X_dev. The thread
# trains, then holds its result until 20.6 s after the notebook's first
# cell (``_T0``, set by ``more_sleep_until``).
LAZY_THREAD = '''

import threading as _threading


def train_classifier(X, y, seed=0):
    X, y, box = X.copy(), y.copy(), {}

    def work():
        box["p"] = _slow_train(X, y, seed)
        time.sleep(max(0.0, _T0 + 20.6 - time.monotonic()))
    thread = _threading.Thread(target=work, daemon=True)
    thread.start()

    def predict(X_new):
        if len(X_new) <= len(X):       # the first prediction, X_dev
            return np.zeros(len(X_new), dtype=np.int64)
        thread.join()
        return box["p"](X_new)
    return predict
'''


def more_sleep_until(nb, seconds, cells=5):
    """An edit: a first cell that notes the notebook's clock (``_T0``)
    and, before the answer cell, cells of at most 4.5 s each (the
    hostile run's cell limit is 5 s) that sleep until ``seconds`` have
    passed since it."""
    import nbformat
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import time\n_T0 = time.monotonic()"))
    i = next(k for k, c in enumerate(nb.cells)
             if nbmeta.grade_id(c) == "train_classifier")
    for _ in range(cells):
        nb.cells.insert(i, nbformat.v4.new_code_cell(
            f"time.sleep(max(0.0, min(4.5, {seconds} - (time.monotonic() "
            f"- _T0))))"))


# Cases of one assignment (its own answers and limits).
ASSIGNMENT_CASES = {"a05_regularization": a05_cases,
                    "a06_practice": a06_cases}


# -- a02 / a03: the wrong step told from what the callables *are* -------
# failing_step (a02) and find_wrong_gradients (a03) are handed the steps
# of a derivation / a backward pass, one of which may be wrong, and must
# find it with a gradient check. These answers never evaluate what they
# are given: they read it (bytecode, names, closures, the order of the
# checks). Whatever comes from the notebook's own cells (its
# make_derivation, published_backward) gets the honest answer, so the
# notebook runs as a careful cheater's would.
def _from_notebook(fn) -> str:
    return ("    co = getattr({fn}, '__code__', None)\n"
            "    if co is not None and ('ipykernel' in co.co_filename or\n"
            "                           co.co_filename.startswith("
            "'<ipython')):\n").format(fn=fn)


A02_FINGERPRINT = '''
_ck_first = {}


def failing_step(steps, tol=1e-5):
    """Each backward compared with the same step of the first
    derivation from the same place (the grader's first one is the
    visible, correct one): a different one is the wrong step."""
    import types

    def code_print(co):
        return (co.co_code, co.co_names, co.co_varnames, co.co_freevars,
                tuple(code_print(k) if isinstance(k, types.CodeType)
                      else repr(k) for k in co.co_consts))

    def fingerprint(fn):
        co = getattr(fn, "__code__", None)
        if not isinstance(co, types.CodeType):
            return (type(fn).__qualname__, repr(fn))
        cells = tuple(type(c.cell_contents).__qualname__
                      for c in (fn.__closure__ or ()))
        return (code_print(co), cells, fn.__qualname__, fn.__doc__,
                repr(fn.__defaults__), sorted(vars(fn)))

''' + _from_notebook("steps[0][2]") + '''\
        return _honest_failing_step(steps, tol)
    found = None
    for name, forward, backward, x in steps:
        co = getattr(backward, "__code__", None)
        key = (name, getattr(co, "co_filename", None),
               getattr(co, "co_firstlineno", None))
        seen = _ck_first.setdefault(key, fingerprint(backward))
        if found is None and fingerprint(backward) != seen:
            found = name
    return found
'''

A02_COUNTS = '''
_ck_calls = [0]


def failing_step(steps, tol=1e-5):
    """The graded derivations come in the order the public checks
    (coursekit/checks/a02_losses.py) make them."""
''' + _from_notebook("steps[0][2]") + '''\
        return _honest_failing_step(steps, tol)
    order = [None, "dL/dP", "dP/dZ", "dZ/dW", None, "dP/dZ", "dZ/dW"]
    _ck_calls[0] += 1
    return order[(_ck_calls[0] - 1) % len(order)]
'''

A03_READS_CODE = '''
def find_wrong_gradients(backward_fn, X, Y, params):
    """Never calls backward_fn: reads the mistake from its bytecode."""
    import dis
''' + _from_notebook("backward_fn") + '''\
        return _honest_find(backward_fn, X, Y, params)
    if co is None or co.co_name == "<lambda>":
        return []                     # constant gradients: torch's
    if co.co_name == "published_backward" or "ones" in co.co_names:
        return ["W1", "W2", "b1", "b2"]
    ops = list(dis.get_instructions(co))
    if "mean" in co.co_names:
        return ["b2"]
    if any(i.opname == "UNARY_NEGATIVE" for i in ops):
        return ["W2", "b2"]
    if 2 not in co.co_consts:         # t1 = 1.0: no A1 ** 2
        return ["W1", "b1"]
    if sum(i.opname == "BINARY_OP" and i.argrepr == "/" for i in ops) > 1:
        return ["W1"]
    for a, b in zip(ops, ops[1:]):
        if a.argval == "A1" and b.opname == "LOAD_ATTR" and b.argval == "T":
            return ["W2"]
    return []
'''

A03_COUNTS = '''
_ck_calls = [0]


def find_wrong_gradients(backward_fn, X, Y, params):
    """The graded backward passes come in the order the public checks
    (coursekit/checks/a03_backprop.py) make them."""
''' + _from_notebook("backward_fn") + '''\
        return _honest_find(backward_fn, X, Y, params)
    order = [[], ["W1", "W2", "b1", "b2"], ["b2"], ["W1"], ["W1", "b1"],
             ["W2"], [], ["W2", "b2"]]
    _ck_calls[0] += 1
    return order[(_ck_calls[0] - 1) % len(order)]
'''

# Honest controls that use what they are given differently from the
# solution: full marks.
A02_HONEST = '''
def failing_step(steps, tol=1e-5):
    """Each step checked with two random output gradients, with a
    numerical gradient of its own (a different h)."""
    draw = np.random.default_rng(12345)
    for name, forward, backward, x in steps:
        x = np.array(x, dtype=float)
        out = forward(x.copy())
        for _ in range(2):
            g = draw.normal(size=np.shape(out)) if np.ndim(out) else 1.0
            num = np.zeros_like(x)
            for i in np.ndindex(x.shape):
                e = np.zeros_like(x)
                e[i] = 1e-6
                num[i] = (np.sum(g * forward(x + e))
                          - np.sum(g * forward(x - e))) / 2e-6
            a = np.asarray(backward(x.copy(), g), dtype=float)
            if a.shape != x.shape or np.max(np.abs(a - num) / np.maximum(
                    1e-8, np.abs(a) + np.abs(num))) > tol:
                return name
    return None
'''

A03_HONEST = '''
def find_wrong_gradients(backward_fn, X, Y, params):
    """Its own central differences, backward_fn called with keywords."""
    _, cache = forward(X, params)
    grads = backward_fn(X=X, Y=Y, params=params, cache=cache)
    wrong = []
    for name in sorted(params):
        g = np.asarray(grads[name], dtype=float)
        p = {k: np.array(v, dtype=float) for k, v in params.items()}
        num = np.zeros_like(p[name])
        for i in np.ndindex(num.shape):
            old = p[name][i]
            p[name][i] = old + 1e-6
            fp = loss(X, Y, p)
            p[name][i] = old - 1e-6
            fm = loss(X, Y, p)
            p[name][i] = old
            num[i] = (fp - fm) / 2e-6
        if g.shape != num.shape or np.max(np.abs(g - num) / np.maximum(
                1e-8, np.abs(g) + np.abs(num))) > 1e-5:
            wrong.append(name)
    return wrong
'''


def a02_cases(release, sol, pts, nb_of) -> dict:
    total = sum(pts.values())
    honest = sol["failing_step"].replace("def failing_step(",
                                         "def _honest_failing_step(")
    assert honest != sol["failing_step"], "a02's solution changed: update"
    lost = total - pts["test_failing_step"]
    return {
        "a02_fingerprints_steps": dict(
            make=nb_of(dict(sol, failing_step=honest + A02_FINGERPRINT)),
            score=lost, messages={"test_failing_step": "failing_step "
                                                       "returned"}),
        "a02_counts_checks": dict(
            make=nb_of(dict(sol, failing_step=honest + A02_COUNTS)),
            score=lost, messages={"test_failing_step": "failing_step "
                                                       "returned"}),
        "a02_honest_two_draws": dict(
            make=nb_of(dict(sol, failing_step=A02_HONEST)),
            score=total, messages={}),
    }


def a03_cases(release, sol, pts, nb_of) -> dict:
    total = sum(pts.values())
    honest = sol["find_wrong_gradients"].replace(
        "def find_wrong_gradients(", "def _honest_find(")
    assert honest != sol["find_wrong_gradients"], \
        "a03's solution changed: update"
    lost = total - pts["test_find_wrong_gradients"]
    return {
        "a03_reads_backward_code": dict(
            make=nb_of(dict(sol, find_wrong_gradients=honest
                            + A03_READS_CODE)),
            score=lost, messages={"test_find_wrong_gradients":
                                  "find_wrong_gradients returned"}),
        "a03_counts_checks": dict(
            make=nb_of(dict(sol, find_wrong_gradients=honest + A03_COUNTS)),
            score=lost, messages={"test_find_wrong_gradients":
                                  "find_wrong_gradients returned"}),
        "a03_honest_keywords": dict(
            make=nb_of(dict(sol, find_wrong_gradients=A03_HONEST)),
            score=total, messages={}),
    }


ASSIGNMENT_CASES.update({"a02_losses": a02_cases,
                         "a03_backprop": a03_cases})
