"""The grading sandbox's parts: the layout, the kernel, the protocol.

The layout and protocol tests are fast unit tests (they run in this
process on plain objects); the kernel tests start a real sandboxed kernel
(root, as in CI) and probe what it can reach.
"""
import os
import socket

import nbformat
import numpy as np
import pytest

from coursekit import judge, layout, pipeline, remote, simulate
from dlopt import grading

REPO = pipeline.REPO
A = "a01_mapping"


def _release():
    return nbformat.read(str(REPO / "exercises" / A / f"{A}.ipynb"),
                         as_version=4)


def test_layout_restores_order_cells_and_metadata():
    release = _release()
    sub = nbformat.read(str(REPO / "exercises" / A / f"{A}.ipynb"),
                        as_version=4)
    cells = sub.cells
    test = next(c for c in cells if simulate.grade_id(c) == "test_affine")
    answer = next(c for c in cells if simulate.grade_id(c) == "affine")
    answer.source = "def affine(X, W, b):\n    return X @ W.T + b\n"
    answer.metadata["nbgrader"]["points"] = 99
    answer.metadata["nbgrader"]["grade"] = True
    extra = nbformat.v4.new_code_cell("print('scratch')")
    extra.metadata["nbgrader"] = dict(test.metadata["nbgrader"])
    cells.insert(0, extra)                 # a fake copy of a test cell
    dw = next(c for c in cells
              if simulate.grade_id(c) == "test_affine_grads_dW")
    cells.remove(dw)
    cells.append(dw)                       # moved to the end
    out = layout.rebuild(release, sub)
    ids = [simulate.grade_id(c) for c in out.cells if simulate.grade_id(c)]
    assert ids == [simulate.grade_id(c) for c in release.cells
                   if simulate.grade_id(c)]
    new_answer = next(c for c in out.cells
                      if simulate.grade_id(c) == "affine")
    assert "X @ W.T + b" in new_answer.source
    assert new_answer.metadata["nbgrader"] == \
        next(c for c in release.cells
             if simulate.grade_id(c) == "affine").metadata["nbgrader"]
    graded = [c for c in out.cells if "nbgrader" in c.metadata]
    assert len(graded) == len(release.cells)
    assert len(out.cells) == len(release.cells) + 1   # the copy, ungraded
    nbformat.validate(out)


def _root():
    if os.geteuid() != 0:
        pytest.skip("the grading sandbox needs root (as in CI)")


@pytest.mark.slow
def test_sandboxed_kernel_holds_nothing(tmp_path):
    _root()
    from coursekit.selfcheck import probe
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    mine = tmp_path / "student"
    mine.mkdir()
    (mine / "data.txt").write_text("mine")
    (mine / "link").symlink_to(REPO / "solutions")
    secret = [REPO / "solutions" / A / f"{A}.ipynb", REPO / ".git",
              REPO / "tests" / "conftest.py", REPO / "coursekit",
              REPO / "dlopt" / "maps.py", tmp_path, "/etc/shadow",
              "link/a01_mapping"]
    try:
        res = probe(secret + ["data.txt"], port=port, cwd=mine,
                    settings={"forbid": ["torch", "dlopt.maps"]},
                    imports=("numpy", "dlopt", "dlopt.grading",
                             "dlopt.maps", "torch", "torch.optim",
                             "coursekit", "coursekit.checks"))
    finally:
        listener.close()
    for p in secret:
        assert not res["read"][str(p)], p
    assert res["read"]["data.txt"] is True       # its own copied folder
    assert res["network"] is False and res["loopback"] is False
    assert res["write_repo"] is False
    assert res["uid"] >= 3_000_000
    # nothing of the grader's environment, nothing inherited
    assert not res["secret_seen"]
    assert not any(k.startswith("COURSE") for k in res["env"]), res["env"]
    assert not res["fd_escape"], res["fd_escape"]
    assert set(res["fds"]) >= {"0", "1", "2"}
    assert all(v in ("/dev/null", "?") or v.startswith(
        ("socket:", "pipe:", "anon_inode:", res["cwd"] + "/"))
        for k, v in res["fds"].items()), res["fds"]
    # its own PID namespace; the background process it started is gone
    assert res["pid"] == 1 and len(res["procs"]) < 10, res["procs"]
    assert res["left"] == []
    # forbidden modules are physically absent, with a message naming them
    imp = res["imports"]
    assert imp["numpy"] is True and imp["dlopt.grading"] is True
    for mod in ("dlopt.maps", "torch", "torch.optim"):
        assert imp[mod] is not True and "not available" in imp[mod], imp
    assert imp["coursekit"] is not True and imp["coursekit.checks"] \
        is not True
    assert 0 < res["mem_limit"] <= 8 * 2**30


@pytest.mark.slow
def test_selfcheck_passes():
    _root()
    from coursekit.selfcheck import run
    ok, lines = run()
    assert ok, "\n".join(lines)


# -- the data-only protocol (no kernel needed) ---------------------------
class _FakeKernel:
    """Runs the harness in a namespace of this process, as the kernel
    would (for unit tests of the encoding and the checks' interface);
    a served function's call (an input request) is answered by the
    ``on_input`` of the request under way, as coursekit.execute does."""

    def __init__(self, ns):
        self.ns = ns
        self.on_input = None

    def _raw_input(self, prompt):
        if self.on_input is None:       # ipykernel, without allow_stdin
            raise RuntimeError("raw_input was called, but this frontend "
                               "does not support input requests.")
        return self.on_input(prompt)

    def __call__(self, code, expr, timeout, on_input=None):
        import types
        fake_ip = types.SimpleNamespace(
            user_ns=self.ns,
            kernel=types.SimpleNamespace(raw_input=self._raw_input))
        self.ns.setdefault("get_ipython", lambda: fake_ip)
        self.on_input = on_input
        try:
            exec(code, self.ns)
            return repr(eval(expr, self.ns)) if expr else None
        finally:
            self.on_input = None


def test_protocol_round_trips_data_and_keeps_objects_in_the_kernel():
    from collections import namedtuple
    State = namedtuple("State", "count mu")

    def init(p):
        return State(0, np.zeros_like(p))

    def update(g, s):
        return g * 2, State(s.count + 1, s.mu + g)
    ns = {"init": init, "update": update, "lr": 0.5,
          "f": lambda x: [x, (1, 2.5), {"a": np.float32(1.5)}, None]}
    S = remote.Student(_FakeKernel(ns))
    assert S.value("lr") == 0.5 and S.has("lr") and not S.has("nope")
    out = S.f(np.arange(3.0))
    assert isinstance(out, list) and np.array_equal(out[0], np.arange(3.0))
    assert out[1] == (1, 2.5) and out[2]["a"] == np.float32(1.5)
    assert out[3] is None
    s = S.init(np.ones(2))
    assert isinstance(s, remote.Record) and s.count == 0
    u, s2 = S.update(np.ones(2), s)       # the state goes back by handle
    assert s2.count == 1 and np.array_equal(s2.mu, np.ones(2))
    fn = S.value("f")
    assert isinstance(fn, remote.Ref) and fn.is_callable


def test_protocol_reraises_student_errors_and_refuses_code_objects():
    def boom(x):
        raise ValueError("bad shape")

    def todo(x):
        raise NotImplementedError()

    class Sneaky:
        def __float__(self):
            raise SystemExit("ran in the grader")
    ns = {"boom": boom, "todo": todo, "sneaky": lambda: Sneaky(),
          "objs": lambda: np.array([Sneaky()], dtype=object)}
    S = remote.Student(_FakeKernel(ns))
    with pytest.raises(remote.StudentError, match="bad shape") as info:
        S.boom(1)
    assert info.value.ename == "ValueError"
    with pytest.raises(NotImplementedError):
        S.todo(1)
    got = S.sneaky()          # not data: a handle, nothing ran here
    assert isinstance(got, remote.Ref)
    with pytest.raises(grading.Feedback, match="expected a NumPy array"):
        grading.check_array("x", got, 1.0)
    assert isinstance(S.objs(), remote.Ref)   # object arrays stay there


def test_served_functions_are_one_stub_whose_values_come_from_here():
    kept = []

    def look(f, g):
        """What the kernel can read of two served functions."""
        kept.append(f)
        cells = [[type(c.cell_contents) for c in h.__closure__]
                 for h in (f, g)]
        same = (f.__code__ is g.__code__ and f.__name__ == g.__name__
                and f.__qualname__ == g.__qualname__
                and f.__defaults__ is g.__defaults__ is None
                and f.__doc__ is g.__doc__ is None
                and vars(f) == vars(g) == {} and cells[0] == cells[1]
                and f.__closure__[0].cell_contents
                is g.__closure__[0].cell_contents
                and f.__code__.co_filename == "<grader>")
        return same, f(np.ones(2), 2.0), g(x=np.ones(2), g=2.0)

    ns = {"look": look, "call": lambda f, *a: f(*a)}
    S = remote.Student(_FakeKernel(ns))
    right = S.serve(lambda x, g: x * g, "backward", ("x", "g"))
    wrong = S.serve(lambda x, g: x * g / 2, "backward", ("x", "g"))
    same, a, b = S.look(right, wrong)
    assert same and np.array_equal(a, [2, 2]) and np.array_equal(b, [1, 1])
    # arguments arrive here as data (an object of the kernel's: a handle)
    got = []
    probe = S.serve(lambda v: got.append(v) or 0, "f", ("v",))
    S.call("call", probe, {"a": [1, np.arange(2.0)]})
    assert got[0]["a"][0] == 1 and np.array_equal(got[0]["a"][1], [0, 1])
    S.call("call", probe, remote.Code("object()"))
    assert isinstance(got[1], remote.Ref)

    def refuse(x):
        raise remote.Refused("x must be an array")

    def crash(x):
        raise ZeroDivisionError("a detail of this form")
    with pytest.raises(remote.StudentError, match="x must be an array") \
            as info:
        S.call("call", S.serve(refuse, "f", ("x",)), 1)
    assert info.value.ename == "ValueError"
    with pytest.raises(remote.StudentError) as info:
        S.call("call", S.serve(crash, "f", ("x",)), 1)
    assert "detail" not in info.value.msg
    assert info.value.msg == "f could not be computed for these arguments"
    # the kernel's own input requests and stale stubs get nothing
    import base64
    import json
    assert "error" in json.loads(base64.b64decode(S._answer("hello")))
    with pytest.raises(RuntimeError, match="input requests"):
        kept[0](np.ones(2), 1.0)    # after the request: no one answers


def test_protocol_rejects_malformed_answers():
    S = remote.Student(lambda code, expr, t: "'not base64!'")
    with pytest.raises(remote.StudentStop, match="not readable"):
        S.value("x")
    import base64
    import json
    bad = base64.b64encode(json.dumps({"ok": {"a": "AAAA"}}).encode())
    S = remote.Student(lambda code, expr, t: repr(bad.decode()))
    with pytest.raises(remote.StudentStop, match="could not be read"):
        S.value("x")


def test_judge_labels_hidden_checks_and_shows_inputs():
    def check(S, rng):
        with judge.hidden(), judge.show(X=np.eye(2)):
            raise grading.Feedback("dW is wrong")
    v = judge.run_check(check, None, None)
    assert not v.passed and v.message.startswith("Hidden check")
    assert "X = [[1., 0.]" in v.message
    assert judge.run_check(lambda S, r: 0.5, None, None).fraction == 0.5
    assert judge.run_check(lambda S, r: None, None, None).passed

    def stops(S, rng):
        try:
            raise remote.StudentStop("did not finish within 3 s")
        except Exception:          # a check cannot swallow it
            pass
    v = judge.run_check(stops, None, None)
    assert not v.passed and "did not finish" in v.message


def test_function_handle_is_looked_up_once_within_the_first_request():
    calls = []
    ns = {"f": lambda x: x + 1}

    class Counting(_FakeKernel):
        def __call__(self, code, expr, timeout):
            calls.append(expr)
            return super().__call__(code, expr, timeout)

    def rebind(g):
        ns["f"] = lambda x: x - 1       # the student's code rebinds f
        return g(1)
    ns["rebind"] = rebind
    S = remote.Student(Counting(ns))
    f = S.function("f")
    assert not calls                    # no round trip of its own
    assert S.rebind(f) == 2             # the f found by the lookup ...
    assert len(calls) == 1 and f._ref is not None
    assert S.rebind(f) == 2             # ... and again, not the new f
    assert f(1) == 2 and S.f(1) == 0    # by name: today's binding
    assert S.function("f") is f
    with pytest.raises(remote.StudentError, match="nope is not defined"):
        S.rebind(S.function("nope"))


def test_uid_processes_counts_live_processes_not_zombies():
    """A kernel killed with its launcher is reaped by init whenever init
    gets to it; until then it is a zombie on its slot's uid, which runs
    nothing: the slot's clean-up and the orphan check ignore it, but a
    live process on the uid is found."""
    import signal
    import time
    from coursekit.sandbox import orphans, uid_processes
    if os.geteuid() != 0:
        pytest.fail("this test changes uids: run it as root (as in CI)")
    uid = 3_000_063                      # the last slot of the defaults
    pids = []
    for live in (False, True):
        pid = os.fork()
        if pid == 0:
            os.setgid(uid)
            os.setuid(uid)
            if live:
                time.sleep(30)
            os._exit(0)
        pids.append(pid)
    try:
        zombie, live = pids
        for _ in range(100):             # the first child has exited
            with open(f"/proc/{zombie}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.02)
        else:
            pytest.fail("the first child did not exit")
        for _ in range(250):             # the second has taken the uid
            with open(f"/proc/{live}/status") as f:
                uids = next(ln for ln in f if ln.startswith("Uid:"))
            if str(uid) in uids.split():
                break
            time.sleep(0.02)
        else:
            pytest.fail("the second child did not take the slot's uid")
        assert uid_processes(uid) == [live]
        assert [p for _, p, _ in orphans([uid])] == [live]
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)


@pytest.mark.slow
def test_private_heldout_digits_are_out_of_the_kernels_reach():
    """a06's private held-out file (COURSE_A06_HELDOUT) in a folder the
    sandbox would otherwise show (/var/lib is a system folder): its
    folder is hidden, the self-check confirms it; without the setting
    the same file is readable (the hiding, not the place, protects it)."""
    _root()
    import shutil
    import tempfile
    from pathlib import Path

    from coursekit.execute import default_sandbox_settings
    from coursekit.selfcheck import probe, run
    folder = Path(tempfile.mkdtemp(prefix="ck-heldout-", dir="/var/lib"))
    try:
        f = folder / "held.npz"
        np.savez(f, X=np.zeros((1000, 64), dtype=np.uint8),
                 y=np.repeat(np.arange(10), 100))
        f.chmod(0o644)               # even a careless mode
        folder.chmod(0o755)
        env = {**os.environ, "COURSE_A06_HELDOUT": str(f)}
        ok, lines = run(env)
        assert ok, "\n".join(lines)
        assert f"ok   cannot read {f}" in lines
        assert f"ok   cannot read {folder}" in lines
        assert f"ok   a06's private held-out digits: 1000 in {f}" in lines
        res = probe([f, folder], settings={
            "hide": default_sandbox_settings(env)["hide"]})
        assert res["read"] == {str(f): False, str(folder): []}
        # control: without the setting the sandbox shows /var/lib
        res = probe([f], settings={"hide": default_sandbox_settings(
            {k: v for k, v in os.environ.items()
             if k != "COURSE_A06_HELDOUT"})["hide"]})
        assert res["read"] == {str(f): True}
    finally:
        shutil.rmtree(folder)


def test_kernel_reads_no_configuration_from_the_submission():
    """HOME and every folder IPython, Jupyter and matplotlib read
    configuration or startup files from are outside the kernel's working
    directory (the submission's copy), and the working directory is not
    on sys.path at start (PYTHONSAFEPATH, with ``python -P``). The
    hostile corpus's ``startup_files`` and ``a06_trains_at_kernel_start``
    submit such files and check that none runs."""
    from coursekit import sandbox
    work = sandbox.WORK
    env = sandbox.kernel_env(work, "/usr/bin", sandbox.HOME)
    for key in ("HOME", "IPYTHONDIR", "JUPYTER_CONFIG_DIR",
                "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR"):
        path = os.path.normpath(env[key])
        assert not (path + "/").startswith(work + "/"), (key, path)
    assert env["PYTHONSAFEPATH"] == "1"
    assert not {"PYTHONSTARTUP", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH",
                "PYTHONUSERBASE"} & set(env)


def test_connection_folder_cannot_fill_the_disk():
    """The kernel's one writable folder of the grader's disk (where its
    sockets are) is a 1 MB tmpfs of its own, gone at cleanup."""
    _root()
    import errno

    from nbclient.util import run_sync

    from coursekit.execute import SandboxKernelManager
    km = SandboxKernelManager()
    folder = km._private
    st = os.statvfs(folder)
    assert st.f_blocks * st.f_frsize <= 1 << 20
    with pytest.raises(OSError) as exc:
        with open(os.path.join(folder, "big"), "wb") as f:
            f.write(b"x" * (2 << 20))
            f.flush()
    assert exc.value.errno == errno.ENOSPC
    run_sync(km.cleanup_resources)()
    assert not os.path.exists(folder)
    with open("/proc/self/mounts") as f:
        assert folder not in f.read()


MEMORY_HOG = r'''
import os, signal, time
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        b = bytearray(600 << 20)
        for i in range(0, len(b), 4096):
            b[i] = 1                  # resident: 600 MB each
        time.sleep(2)
        os._exit(0)
    kids.append(pid)
EXTRA = {"killed": 0}
for pid in kids:
    _, st = os.waitpid(pid, 0)
    EXTRA["killed"] += os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9
'''


@pytest.mark.slow
def test_a_kernel_and_its_children_share_one_memory_limit():
    """The memory limit is the kernel's, children included (a cgroup per
    kernel): three children of 600 MB each under a 1,500 MB limit do not
    all survive. Where the machine has no cgroups, the self-check says
    the limits are per process only."""
    _root()
    from coursekit import sandbox
    from coursekit.selfcheck import probe
    try:
        sandbox._cgroup_files(dict(sandbox.DEFAULTS), "coursekit-probe")
        available = True
    except OSError:
        available = False
    res = probe([], imports=(), settings={"memory_mb": 1500},
                extra=MEMORY_HOG)
    limit = res["cgroup"].get("memory.limit_in_bytes") or \
        res["cgroup"].get("memory.max")
    if available:
        assert limit == str(1500 << 20), res["cgroup"]
        assert res["cgroup"].get("pids.max") == "256"
        assert res["extra"]["killed"] >= 1, res["extra"]
    else:
        assert not str(limit).isdigit() or int(limit) >= 1 << 50
