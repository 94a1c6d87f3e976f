"""nbgrader's Execute step, with every submission in a sandboxed kernel.

``nbgrader_config.py`` puts :class:`SandboxedExecute` in place of
nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``. It

* starts the kernel with :mod:`coursekit.sandbox` (whatever kernel the
  submission's metadata names), over ZeroMQ's ``ipc`` transport in a
  private directory, so the kernel needs no network;
* runs :func:`coursekit.guard.restore` before every graded test cell, and
  records in the cell's metadata what it had to undo;
* caps each cell's output (a print loop cannot fill the grader's memory
  or the notebook);
* turns a cell timeout, a dead kernel (memory/CPU limit) or an
  unresponsive kernel into an error *in that cell* with a clear message,
  and marks every later cell "not run" instead of aborting the
  submission, so the cells before it keep their points.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager, KernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Dict, Integer

from coursekit import pipeline

KERNEL_NAME = "coursekit-sandbox"
_GUARD = ("__import__('coursekit.guard').guard.restore("
          "get_ipython().user_ns)")
_MARK = ("__import__('coursekit.guard').guard.mark_locked("
         "get_ipython().user_ns, {names!r})")


def default_sandbox_settings() -> dict:
    """What to hide from the kernel and what to bind back, read-only."""
    hide = ["/root", "/home", "/var/tmp", "/var/lib/postgresql",
            "/var/mail", "/var/spool", "/dev/shm", "/dev/mqueue", "/run",
            "/mnt", "/media", "/srv", "/opt", str(pipeline.REPO)]
    system = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr",
              "etc", "dev", "proc", "sys", "var", "boot", "run", "tmp"}
    hide += [os.path.join("/", d) for d in os.listdir("/")
             if d not in system and os.path.isdir(os.path.join("/", d))]
    for var in ("COURSE_GRADING_DIR", "COURSE_EXCHANGE"):
        if os.environ.get(var):
            hide.append(os.environ[var])
    keep = [sys.prefix, sys.base_prefix, sys.exec_prefix,
            os.path.dirname(os.path.realpath(sys.executable)),
            str(pipeline.REPO / "dlopt"),
            str(pipeline.REPO / "coursekit")]
    keep += [p for p in sys.path if p and os.path.isdir(p)
             and "site-packages" in p]
    from coursekit.sandbox import DEFAULTS
    return dict(hide=hide, keep=keep, memory_mb=DEFAULTS["memory_mb"])


class SandboxKernelManager(AsyncKernelManager):
    """Start ``coursekit.sandbox`` with a private ipc connection dir."""

    sandbox_settings = Dict({}).tag(config=True)

    def __init__(self, **kw):
        kw["kernel_name"] = KERNEL_NAME
        super().__init__(**kw)
        self._private = tempfile.mkdtemp(prefix="ck-kernel-")
        self.transport = "ipc"
        self.connection_file = os.path.join(self._private, "kernel.json")
        self.ip = os.path.join(self._private, "k")
        self._kernel_spec = KernelSpec(
            argv=[sys.executable, "-m", "coursekit.sandbox", "-f",
                  "{connection_file}"],
            display_name="Python 3 (coursekit sandbox)", language="python")

    async def start_kernel(self, **kw):
        import json
        env = dict(kw.pop("env", None) or os.environ)
        env["COURSEKIT_SANDBOX"] = json.dumps(
            {**default_sandbox_settings(), **self.sandbox_settings})
        kw["env"] = env
        return await KernelManager._async_start_kernel(self, **kw)

    async def cleanup_resources(self, restart: bool = False) -> None:
        await KernelManager._async_cleanup_resources(self, restart)
        if not restart:
            shutil.rmtree(self._private, ignore_errors=True)


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


def _nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


class SandboxedExecute(Execute):
    """nbgrader's Execute with sandboxed kernels; see the module doc."""

    max_output_chars = Integer(
        20000, help="Characters of output kept per cell").tag(config=True)
    sandbox_settings = Dict(
        {}, help="Overrides for coursekit.sandbox (memory_mb, cpu_seconds,"
        " ...)").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        # The kernel and its private files are thrown away: no need to
        # wait for a graceful exit.
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)

    def create_kernel_manager(self):
        self.kernel_name = KERNEL_NAME
        self.km = SandboxKernelManager(
            config=self.config, sandbox_settings=self.sandbox_settings)
        return self.km

    # -- output cap --------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        used = getattr(self, "_out_used", {}).get(cell_index, 0)
        if used > self.max_output_chars:
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if out is None:
            return out
        size = len(str(out.get("text", ""))) + len(str(out.get("data", "")))
        self._out_used = getattr(self, "_out_used", {})
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

    # -- per-cell execution --------------------------------------------
    def _silent(self, expr: str, timeout: float = 30):
        """Evaluate ``expr`` in the kernel, outside any cell."""
        from nbclient.util import ensure_async

        async def go():
            msg_id = await ensure_async(self.kc.execute(
                "", silent=True, store_history=False,
                user_expressions={"r": expr}))
            return await self.async_wait_for_reply(msg_id)
        saved = self.timeout
        self.timeout = timeout
        try:
            reply = run_sync(go)()
        finally:
            self.timeout = saved
        return reply["content"] if reply else {}

    def preprocess_cell(self, cell, resources, index):
        meta = _nbgrader_meta(cell)
        if cell.cell_type != "code":
            return cell, resources
        if self._dead:
            if meta.get("grade"):
                cell.outputs = [_error("NotRun", self._dead)]
            else:
                cell.outputs = []
            return cell, resources
        label = meta.get("grade_id") or f"cell {index}"
        try:
            if meta.get("grade"):
                self._run_guard(cell)
            cell, resources = super().preprocess_cell(cell, resources, index)
            if meta.get("locked") and not meta.get("grade") \
                    and not meta.get("solution"):
                self._mark_locked(cell)
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
        else:
            self._explain_timeout(cell)
        return cell, resources

    def _who(self) -> str:
        path = self.resources.get("metadata", {}).get("path", "")
        return path

    def _explain_timeout(self, cell):
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

    def _run_guard(self, cell):
        try:
            content = self._silent(_GUARD)
        except Exception as exc:  # noqa: BLE001
            raise DeadKernelError(f"guard failed: {exc}") from exc
        restored = content.get("user_expressions", {}).get("r", {})
        if content.get("status") != "ok" or restored.get("status") != "ok":
            self.log.warning("guard failed before %s: %s",
                             _nbgrader_meta(cell).get("grade_id"), content)
            return
        text = restored.get("data", {}).get("text/plain", "[]")
        if text not in ("[]", ""):
            self.log.warning("%s: restored before %s: %s", self._who(),
                             _nbgrader_meta(cell).get("grade_id"), text)
            cell.metadata.setdefault("coursekit", {})["restored"] = text

    def _mark_locked(self, cell):
        import ast
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            return
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef,
                                 ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx,
                                                           ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    names.add((a.asname or a.name).split(".")[0])
        if tree.body:
            self._silent(_MARK.format(names=sorted(names)))

    def _kill(self):
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001
            pass

    def preprocess(self, nb, resources=None, km=None):
        self._dead = ""
        self._out_used = {}
        return super().preprocess(nb, resources, km)
