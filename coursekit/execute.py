"""nbgrader's Execute step: a sandboxed kernel, and verdicts from outside.

``nbgrader_config.py`` puts :class:`SandboxedExecute` in place of
nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``. It

* starts the kernel with :mod:`coursekit.sandbox` (whatever kernel the
  submission's metadata names) over ZeroMQ's ``ipc`` transport in a
  private directory, with the assignment's sandbox settings (the modules
  it forbids are absent from the kernel's view);
* runs the notebook top to bottom as nbgrader does; a test cell runs its
  visible tests in the kernel, for the student's output, and then its
  trusted check (:mod:`coursekit.judge`) in *this* process, which calls
  the student's code in the kernel and compares the plain data it gets
  back. The cell's outputs keep what it printed and end with the
  verdict: an ``error`` output with the check's message, or nothing (full
  points), or a partial score. Errors, ``stderr`` and results the kernel
  produced in a test cell never decide a grade;
* caps output where it arrives: ZeroMQ drops any message above a size
  limit before it is read (``MAXMSGSIZE``) and queues few of them, and
  each cell keeps at most ``max_output_chars`` characters;
* turns a cell timeout, a dead kernel (memory/CPU limit) or an
  unresponsive kernel into an error *in that cell* with a clear message,
  and marks every later cell "not run", so the cells before keep their
  points. Every time limit is measured by the grader's clock.
"""
from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import time

import numpy as np
import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager, KernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, SaveAutoGrades
from traitlets import Bool, Dict, Integer

from coursekit import judge, nbmeta, pipeline
from coursekit.remote import HarnessMissing, Student, StudentStop

KERNEL_NAME = "coursekit-sandbox"
IOPUB_MAX_BYTES = 256 * 1024       # one output message, at most
SHELL_MAX_BYTES = 64 * 1024 * 1024  # one reply (a check's result data)


def default_sandbox_settings(environ=None) -> dict:
    """What to hide from the kernel and what to bind back, read-only
    (``environ``: the grader's settings, default ``os.environ``)."""
    from coursekit import heldout
    env = os.environ if environ is None else environ
    hide = ["/root", "/home", "/var/tmp", "/var/lib/postgresql",
            "/var/mail", "/var/spool", "/dev/shm", "/dev/mqueue", "/run",
            "/mnt", "/media", "/srv", "/opt", str(pipeline.REPO)]
    system = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr",
              "etc", "dev", "proc", "sys", "var", "boot", "run", "tmp"}
    hide += [os.path.join("/", d) for d in os.listdir("/")
             if d not in system and os.path.isdir(os.path.join("/", d))]
    for var in ("COURSE_GRADING_DIR", "COURSE_EXCHANGE"):
        if env.get(var):
            hide.append(env[var])
    # The folder of a06's private held-out digits (coursekit.heldout
    # refuses a folder that cannot be hidden: a system folder, the Python
    # environment, the repository).
    folder = heldout.hide_folder(env)
    if folder:
        hide.append(folder)
    keep = [sys.prefix, sys.base_prefix, sys.exec_prefix,
            os.path.dirname(os.path.realpath(sys.executable))]
    keep += [p for p in sys.path if p and os.path.isdir(p)
             and "site-packages" in p]
    from coursekit.sandbox import DEFAULTS
    return dict(hide=hide, keep=keep, memory_mb=DEFAULTS["memory_mb"],
                dlopt_dir=str(pipeline.REPO / "dlopt"))


class CappedIOPub(AsyncZMQSocketChannel):
    """The output channel, healed after ZeroMQ refuses a huge message.

    ZeroMQ refuses a message over ``MAXMSGSIZE`` from its header, before
    reading it, and drops that connection for good: this channel notices
    (a socket monitor) and connects a new socket, so only the oversized
    message (and what the kernel sent during the reconnect) is lost;
    ``dropped`` counts the times. Waits are sliced so a dead connection
    never blocks a wait.
    """

    client = None
    dropped = 0
    _monitor = None
    _n = 0

    def _watch(self):
        CappedIOPub._n += 1
        addr = f"inproc://coursekit-iopub-monitor-{os.getpid()}-{self._n}"
        self.socket.monitor(addr, zmq.EVENT_DISCONNECTED)
        # Made by the client's own context, so that destroying it (at
        # stop_channels) closes this socket too; read through a
        # synchronous view.
        mon = self.socket.context.socket(zmq.PAIR)
        mon.connect(addr)
        self._monitor_owner = mon
        self._monitor = zmq.Socket.shadow(mon.underlying)

    def _heal(self):
        if self._monitor is None:
            self._watch()
            return
        if not self._monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return
        while self._monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._monitor.recv_multipart(zmq.NOBLOCK)
        self.dropped += 1
        try:
            self._monitor_owner.close(linger=0)
            self.socket.disable_monitor()
            self.socket.close(linger=0)
        except zmq.ZMQError:
            pass
        self.socket = self.client.connect_iopub()
        self._watch()

    async def get_msg(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._heal()
            left = 0.2 if deadline is None else max(0.0, min(
                0.2, deadline - time.monotonic()))
            if await self.socket.poll(int(left * 1000)):
                return await self._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise queue.Empty

    async def msg_ready(self):
        self._heal()
        return bool(await self.socket.poll(timeout=0))

    def close(self):
        if self._monitor is not None:
            self._monitor_owner.close(linger=0)
            self._monitor = None
        super().close()


class CappedClient(AsyncKernelClient):
    """A kernel client whose sockets refuse oversized messages.

    ZeroMQ checks a message's size from its header and refuses it before
    reading it, so a huge print never reaches this process's memory; the
    receive queue of output messages is short (``RCVHWM``).
    """

    iopub_channel_class = CappedIOPub

    @property
    def iopub_channel(self):
        chan = AsyncKernelClient.iopub_channel.fget(self)
        chan.client = self
        return chan

    def _create_connected_socket(self, channel, identity=None):
        url = self._make_url(channel)
        from jupyter_client.connect import channel_socket_types
        sock = self.context.socket(channel_socket_types[channel])
        sock.linger = 1000
        if identity:
            sock.identity = identity
        limit = IOPUB_MAX_BYTES if channel == "iopub" else SHELL_MAX_BYTES
        sock.setsockopt(zmq.MAXMSGSIZE, limit)
        if channel == "iopub":
            sock.setsockopt(zmq.RCVHWM, 200)
        sock.connect(url)
        if channel == "iopub":
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        return sock

    def connect_iopub(self, identity=None):
        return self._create_connected_socket("iopub", identity=identity)


class SandboxKernelManager(AsyncKernelManager):
    """Start ``coursekit.sandbox`` with a private ipc connection dir."""

    sandbox_settings = Dict({}).tag(config=True)

    def __init__(self, **kw):
        kw["kernel_name"] = KERNEL_NAME
        super().__init__(**kw)
        self._private = tempfile.mkdtemp(prefix="ck-kernel-")
        self._small = _small_tmpfs(self._private)
        self.transport = "ipc"
        self.connection_file = os.path.join(self._private, "kernel.json")
        self.ip = os.path.join(self._private, "k")
        self.client_class = "coursekit.execute.CappedClient"
        self.client_factory = CappedClient
        self._kernel_spec = KernelSpec(
            argv=[sys.executable, "-m", "coursekit.sandbox", "-f",
                  "{connection_file}"],
            display_name="Python 3 (coursekit sandbox)", language="python")

    async def start_kernel(self, **kw):
        import json
        # The launcher (root) reads its settings from this environment
        # and builds the kernel's own from scratch (coursekit.sandbox).
        env = {k: v for k, v in (kw.pop("env", None) or os.environ).items()
               if k in ("PATH", "LANG", "LC_ALL")}
        env["COURSEKIT_SANDBOX"] = json.dumps(
            {**default_sandbox_settings(), **self.sandbox_settings})
        kw["env"] = env
        return await KernelManager._async_start_kernel(self, **kw)

    async def cleanup_resources(self, restart: bool = False) -> None:
        await KernelManager._async_cleanup_resources(self, restart)
        if not restart:
            if self._small:
                from coursekit.sandbox import unmount
                unmount(self._private)
                self._small = False
            shutil.rmtree(self._private, ignore_errors=True)


# The connection folder is the one folder of the grader's disk the kernel
# can write (it binds its sockets there): as root it is a tmpfs of its
# own, so a kernel cannot fill the grading machine's disk through it (600
# MB written in 60 MB files, each under the file-size limit, measured).
CONNECTION_DIR_LIMIT = "size=1m,nr_inodes=64,mode=0700"


def _small_tmpfs(path: str) -> bool:
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False            # development: no mounts without root
    from coursekit.sandbox import MS_NODEV, MS_NOEXEC, MS_NOSUID, _mount
    _mount("ck-kernel", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           CONNECTION_DIR_LIMIT)
    return True


def _timing(kind: str, label: str, seconds: float) -> None:
    """With ``COURSEKIT_TIMING=<file>`` (the grader's environment, never
    the kernel's), append ``kind label seconds`` for the kernel's start,
    every cell run, every check and every request of a check (labelled
    by its size): where an assignment's grading time goes."""
    path = os.environ.get("COURSEKIT_TIMING")
    if path:
        with open(path, "a") as f:
            f.write(f"{kind}\t{label}\t{seconds:.4f}\n")


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


GRADER_KEY = nbmeta.GRADER_KEY


def _grader_text(text: str) -> NotebookNode:
    return NotebookNode(output_type="display_data",
                        data={"text/plain": text},
                        metadata={GRADER_KEY: {"message": True}})


def apply_verdict(cell, verdict: judge.Verdict) -> None:
    """The test cell's outputs: what it printed, then the verdict."""
    outs = []
    for o in cell.get("outputs", []):
        kind = o.get("output_type")
        if kind == "stream" and o.get("name") == "stdout":
            outs.append(o)
        elif kind == "display_data":
            meta = {k: v for k, v in (o.get("metadata") or {}).items()
                    if k != GRADER_KEY}
            outs.append(NotebookNode(output_type="display_data",
                                     data=o.get("data", {}), metadata=meta))
        elif kind == "execute_result":   # never a score from the kernel
            outs.append(NotebookNode(output_type="display_data",
                                     data=o.get("data", {}), metadata={}))
    if not verdict.passed and verdict.fraction is None:
        outs.append(_error("Feedback", verdict.message))
    elif verdict.passed:
        if verdict.message:      # a note: full points, something to read
            outs.append(_grader_text(verdict.message))
    elif verdict.fraction is not None:
        pts = nbmeta.points(cell) * verdict.fraction
        if verdict.message:
            outs.append(_grader_text(verdict.message))
        outs.append(NotebookNode(
            output_type="execute_result", metadata={},
            execution_count=cell.get("execution_count"),
            data={"text/plain": repr(round(pts, 6))}))
    cell.outputs = outs


class SandboxedExecute(Execute):
    """nbgrader's Execute with sandboxed kernels; see the module doc."""

    max_output_chars = Integer(
        20000, help="Characters of output kept per cell").tag(config=True)
    check_timeout = Integer(
        120, help="Seconds a cell's trusted check may take in all "
        "(grader's clock)").tag(config=True)
    call_timeout = Integer(
        30, help="Seconds one call of the student's code may take "
        "(grader's clock)").tag(config=True)
    sandbox_settings = Dict(
        {}, help="Overrides for coursekit.sandbox (memory_mb, cpu_seconds,"
        " ...)").tag(config=True)
    # Output lost on the way (an oversized message, see CappedIOPub) is
    # no reason to stop a notebook: the reply says how the cell ended.
    raise_on_iopub_timeout = Bool(False).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        # The kernel and its private files are thrown away: no need to
        # wait for a graceful exit.
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)

    def create_kernel_manager(self):
        self.kernel_name = KERNEL_NAME
        settings = dict(self.sandbox_settings)
        kernel = dict(getattr(self._checks, "KERNEL", {}) or {})
        settings["forbid"] = sorted(set(kernel.get("forbid", [])))
        for key in ("memory_mb", "cpu_seconds", "tmp_mb"):
            if key in kernel and key not in self.sandbox_settings:
                settings[key] = kernel[key]
        self.km = SandboxKernelManager(config=self.config,
                                       sandbox_settings=settings)
        return self.km

    # -- output cap --------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        used = self._out_used.get(cell_index, 0)
        if used > self.max_output_chars:
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if out is None:
            return out
        size = len(str(out.get("text", ""))) + len(str(out.get("data", "")))
        self._out_used[cell_index] = used + size
        if used + size > self.max_output_chars:
            keep = max(self.max_output_chars - used, 0)
            note = (f"\n... output truncated by the grader (more than "
                    f"{self.max_output_chars} characters) ...\n")
            if out.get("output_type") == "stream":
                out["text"] = out["text"][:keep] + note
            else:
                outs[-1] = NotebookNode(output_type="stream", name="stdout",
                                        text=note)
        return out

    # -- talking to the kernel outside any cell ------------------------
    def _kernel_eval(self, code: str, expr: str | None, timeout: float,
                     on_input=None):
        """Run ``code`` silently; return the text of ``expr`` (or None).

        The time limit is the grader's; on expiry the kernel is
        interrupted, and killed if it does not come back. With
        ``on_input``, the request allows input requests (the calls of
        functions the grader serves, :meth:`coursekit.remote.Student.serve`):
        each one of this request is answered with ``on_input(prompt)``
        while the reply is awaited, on the grader's clock.
        """
        remaining = self._check_deadline - time.monotonic()
        if remaining <= 0:
            raise StudentStop(f"the checks of this cell took longer than "
                              f"{self.check_timeout} s and were stopped")
        timeout = min(timeout, remaining)

        async def answer_inputs(kc, msg_id):
            while True:
                try:
                    msg = await ensure_async(kc.get_stdin_msg(timeout=0))
                except queue.Empty:
                    return
                if msg.get("msg_type") == "input_request" and \
                        msg["parent_header"].get("msg_id") == msg_id:
                    try:
                        text = on_input(str(msg["content"].get("prompt",
                                                               "")))
                    except Exception:  # noqa: BLE001
                        text = ""      # the kernel's call fails there
                    kc.input(text)

        async def go():
            kc = self.kc
            msg_id = kc.execute(code, silent=True, store_history=False,
                                user_expressions={"r": expr} if expr
                                else {}, allow_stdin=on_input is not None)
            deadline = time.monotonic() + timeout
            poller = None
            if on_input is not None:
                poller = zmq.asyncio.Poller()
                poller.register(kc.shell_channel.socket, zmq.POLLIN)
                poller.register(kc.stdin_channel.socket, zmq.POLLIN)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if poller is not None:
                    events = dict(await poller.poll(
                        int(min(left, 1.0) * 1000)))
                    if kc.stdin_channel.socket in events:
                        await answer_inputs(kc, msg_id)
                    if kc.shell_channel.socket not in events:
                        if not events and not await ensure_async(
                                self.km.is_alive()):
                            raise DeadKernelError("the kernel died")
                        continue
                try:
                    msg = await ensure_async(kc.get_shell_msg(
                        timeout=0 if poller is not None
                        else min(left, 1.0)))
                except queue.Empty:
                    if not await ensure_async(self.km.is_alive()):
                        raise DeadKernelError("the kernel died")
                    continue
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg["content"]

        started = time.monotonic()
        try:
            content = run_sync(go)()
            _timing("request", f"{len(expr or '')}B",
                    time.monotonic() - started)
        except DeadKernelError:
            self._dead = "not run: the kernel died during a check."
            raise StudentStop("the kernel died while the grader was "
                              "calling your code (memory or CPU limit, or "
                              "a crash)") from None
        finally:
            self._drain_iopub()
        if content is None:
            self._recover(timeout)
            raise StudentStop(f"your code did not finish within "
                              f"{timeout:.0f} s (grader's clock) and was "
                              f"stopped")
        if content.get("status") != "ok":
            raise StudentStop(
                "the grader's helper could not run in your kernel ("
                f"{content.get('ename', '')}: {content.get('evalue', '')})"
                "; does the notebook delete or replace names it did "
                "not define?")
        if not expr:
            return None
        r = content.get("user_expressions", {}).get("r", {})
        if r.get("status") != "ok":
            raise HarnessMissing("the grader's helper in your kernel was "
                                 "removed or replaced")
        return r.get("data", {}).get("text/plain")

    def _drain_iopub(self):
        async def go():
            for _ in range(10000):
                try:
                    await ensure_async(self.kc.get_iopub_msg(timeout=0))
                except queue.Empty:
                    return
        try:
            run_sync(go)()
        except Exception:  # noqa: BLE001
            pass

    def _recover(self, timeout):
        """After a timed-out call: interrupt; kill if it stays busy."""
        try:
            run_sync(self.km.interrupt_kernel)()
        except Exception:  # noqa: BLE001
            pass

        async def wait_idle():
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    await ensure_async(self.kc.get_shell_msg(timeout=0.5))
                    return True
                except queue.Empty:
                    continue
            return False
        try:
            ok = run_sync(wait_idle)()
        except Exception:  # noqa: BLE001
            ok = False
        if not ok:
            self._dead = (f"not run: your code did not stop after "
                          f"{timeout:.0f} s.")
            self._kill()

    # -- the kernel's start, on the grader's clock ----------------------
    # What the kernel does before the first cell (the sandbox's own
    # start, IPython's) counts as the notebook's time (``so_far``): a
    # start that ran the student's code would be timed too, whatever
    # made it run (coursekit.sandbox starts it from empty folders).
    def start_new_kernel(self, **kw):
        self._starting = time.monotonic()
        return super().start_new_kernel(**kw)

    def start_new_kernel_client(self):
        kc = super().start_new_kernel_client()
        started = getattr(self, "_starting", None)
        if started is not None:
            seconds = time.monotonic() - started
            self._cells_seconds += seconds
            _timing("kernel", "start", seconds)
            self._starting = None
        return kc

    # -- per-cell execution --------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        is_test = nbmeta.is_test(cell)
        if self._dead:
            cell.outputs = [_error("NotRun", self._dead)] if is_test else []
            return cell, resources
        label = nbmeta.grade_id(cell) or f"cell {index}"
        started = time.monotonic()
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except (DeadKernelError, CellTimeoutError) as exc:
            dead = isinstance(exc, DeadKernelError)
            why = ("the kernel died (it ran out of memory, CPU time or "
                   "crashed)" if dead else "the cell did not stop when "
                   "interrupted after its time limit")
            self.log.error("%s: cell %s: %s", self._who(), label, why)
            cell.outputs = list(cell.get("outputs", [])) + [
                _error("KernelStopped" if dead else "CellTimeoutError",
                       f"{why}; cells after {label!r} were not run.")]
            self._dead = f"not run: {why} in cell {label!r}."
            self._kill()
            return cell, resources
        self._explain_limits(cell)
        dropped = self.kc.iopub_channel.dropped
        if dropped > self._dropped:
            self._dropped = dropped
            cell.outputs.append(NotebookNode(
                output_type="stream", name="stdout", text=(
                    f"\n... output dropped by the grader (a single output "
                    f"message over {IOPUB_MAX_BYTES // 1024} KB) ...\n")))
        seconds = time.monotonic() - started
        self._cells_seconds += seconds
        _timing("cell", label, seconds)
        if not is_test:
            self._observe(cell, label, seconds)
        if is_test:
            started = time.monotonic()
            self._judge(cell, label)
            _timing("check", label, time.monotonic() - started)
            # The verdict rewrote the outputs: a later update of a display
            # id shown here must not write into them by its old index (it
            # hit the verdict's own outputs, or raised IndexError).
            self.clear_display_id_mapping(index)
        return cell, resources

    def _judge(self, cell, label):
        fn = getattr(self._checks, label, None) if self._checks else None
        if fn is None:
            self.log.error("%s: no trusted check for %s", self._who(),
                           label)
            verdict = judge.Verdict(False, None, (
                f"the grader has no check for {label!r}; the instructor "
                f"has been told (this is not your mistake)"))
        else:
            self._check_deadline = time.monotonic() + self.check_timeout
            student = Student(self._kernel_eval, timeout=self.call_timeout,
                              memo=self._memo)
            rng = np.random.default_rng([self._seed, self._cells_judged])
            verdict = judge.run_check(fn, student, rng)
            if self._dead and verdict.passed:
                verdict = judge.Verdict(False, None, self._dead)
        self._cells_judged += 1
        apply_verdict(cell, verdict)

    def _observe(self, cell, label, seconds):
        """A locked cell the checks watch (``AFTER[grade_id]`` in the
        checks module): right after it ran, before any other cell, call
        ``fn(S, rng, ran)`` with what the grader saw of the run: ``ran``
        holds ``seconds`` (the cell, grader's clock), ``so_far`` (every
        cell run so far, this one included: the student's code, not the
        grader's checks) and ``error`` (the cell's
        error output, ``(ename, evalue)``, or None). It keeps what it
        finds in ``S.memo`` for the checks; what it raises is logged and
        dropped (the checks then do the work themselves)."""
        after = getattr(self._checks, "AFTER", None) if self._checks \
            else None
        fn = after.get(label) if isinstance(after, dict) else None
        if fn is None or not nbmeta.is_locked(cell):
            return
        err = next(((str(o.get("ename", "")), str(o.get("evalue", "")))
                    for o in cell.get("outputs", [])
                    if o.get("output_type") == "error"), None)
        self._check_deadline = time.monotonic() + self.check_timeout
        student = Student(self._kernel_eval, timeout=self.call_timeout,
                          memo=self._memo)
        rng = np.random.default_rng([self._seed, 1 << 20, self._observed])
        self._observed += 1
        try:
            fn(student, rng, dict(seconds=seconds, error=err,
                                  so_far=self._cells_seconds))
        except (Exception, StudentStop) as exc:  # noqa: BLE001
            self.log.error("%s: watching cell %s: %s: %s", self._who(),
                           label, type(exc).__name__, exc)

    def _who(self) -> str:
        info = self.resources.get("nbgrader", {}) if self.resources else {}
        return f"{info.get('student')}/{info.get('assignment')}"

    def _explain_limits(self, cell):
        limit = {**default_sandbox_settings(), **self.sandbox_settings}
        mem = limit.get("memory_mb")
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "error"
                    and out.get("ename") == "MemoryError"):
                out["evalue"] = (f"{out.get('evalue', '')} (the grader "
                                 f"allows {mem} MB of memory)").strip()
            if (out.get("output_type") == "error"
                    and out.get("ename") == "CellTimeoutError"):
                out["evalue"] = (f"this cell took longer than "
                                 f"{self.timeout} s and was stopped.")

    def _kill(self):
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001
            pass

    def preprocess(self, nb, resources=None, km=None):
        info = (resources or {}).get("nbgrader", {})
        assignment = info.get("assignment")
        self._checks = judge.load(assignment) if assignment else None
        self._seed = judge.seed_for(str(info.get("student")),
                                    str(assignment))
        self._cells_judged = 0
        self._observed = 0
        self._cells_seconds = 0.0
        self._dead = ""
        self._out_used = {}
        self._dropped = 0
        self._memo = {}
        self._check_deadline = time.monotonic()
        return super().preprocess(nb, resources, km)


class SaveAutoGradesAtOnce(SaveAutoGrades):
    """nbgrader's ``SaveAutoGrades`` with one commit per notebook.

    nbgrader commits after every graded and answer cell: on SQLite each
    commit is a write to disk (a04, 28 commits: about 0.3 s of a
    submission's grading). Here the scores and comments are flushed cell by
    cell (so every query sees them, as before) and committed together at
    the end: the same rows, written in one transaction (a crash in the
    middle leaves the notebook's previous grades, not half of the new
    ones).
    """

    def preprocess(self, nb, resources):
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.student_id = resources["nbgrader"]["student"]
        self.db_url = resources["nbgrader"]["db_url"]
        self.gradebook = Gradebook(self.db_url)
        with self.gradebook:
            db = self.gradebook.db
            db.commit = db.flush          # the cells' commits: flushes
            try:
                nb, resources = super(SaveAutoGrades, self).preprocess(
                    nb, resources)
            except BaseException:
                del db.commit
                db.rollback()
                raise
            del db.commit
            db.commit()
        return nb, resources
