"""Start one sandboxed kernel and check what it can and cannot reach.

``python -m coursekit check`` (and the tests) use :func:`probe` to run a
snippet in a kernel started exactly as the autograder starts it.
"""
from __future__ import annotations

import json
import os
import tempfile

from coursekit import pipeline

PROBE = r'''
import json, os, resource, socket
res = {"uid": os.getuid(), "cwd": os.getcwd()}
def can_read(p):
    try:
        if os.path.isdir(p):
            return sorted(os.listdir(p))
        open(p, "rb").read(1)
        return True
    except OSError:
        return False
res["read"] = {p: can_read(p) for p in PATHS}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2).close()
    res["network"] = True
except OSError:
    res["network"] = False
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
    res["loopback"] = True
except OSError:
    res["loopback"] = False
try:
    open(os.path.join(REPO, "written-by-student"), "w").close()
    res["write_repo"] = True
except OSError:
    res["write_repo"] = False
res["mem_limit"] = resource.getrlimit(resource.RLIMIT_AS)[0]
res["env_db"] = "COURSE_DB_URL" in os.environ
print("PROBE" + json.dumps(res))
'''


def probe(paths, port: int = 1, cwd=None, settings=None) -> dict:
    """Run PROBE in a sandboxed kernel; return its findings."""
    from nbclient.util import run_sync

    from coursekit.execute import SandboxKernelManager
    km = SandboxKernelManager(sandbox_settings=settings or {})
    cwd = cwd or tempfile.mkdtemp(prefix="ck-probe-")
    run_sync(km.start_kernel)(cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    out = []
    try:
        run_sync(kc.wait_for_ready)(timeout=60)
        code = (f"PATHS = {list(map(str, paths))!r}\nPORT = {port}\n"
                f"REPO = {str(pipeline.REPO)!r}\n" + PROBE)
        run_sync(kc.execute_interactive)(
            code, timeout=60,
            output_hook=lambda m: out.append(m["content"].get("text", "")))
    finally:
        kc.stop_channels()
        run_sync(km.shutdown_kernel)(now=True)
    text = "".join(out)
    return json.loads(text.split("PROBE", 1)[1].strip().splitlines()[0])


def run():
    repo = pipeline.REPO
    grading = os.environ.get("COURSE_GRADING_DIR", str(repo / "_grading"))
    secret = [repo / "solutions", repo / ".git", repo / "tests", grading,
              "/root", "/etc/shadow"]
    res = probe(secret + [repo / "dlopt"])
    lines, ok = [], True
    kept = {".pyenv", ".venv", ".local", "dlopt", "coursekit"}
    for p in secret:
        seen = res["read"][str(p)]
        bad = bool(set(seen) - kept) if isinstance(seen, list) else seen
        ok &= not bad
        lines.append(f"{'FAIL' if bad else 'ok  '} cannot read {p}")
    checks = [(bool(res["read"][str(repo / "dlopt")]), "can see dlopt"),
              (not res["network"], "no network"),
              (not res["write_repo"], "cannot write the course"),
              (res["uid"] != 0, f"runs as uid {res['uid']}, not root"),
              (not res["env_db"], "no database URL in its environment")]
    for good, what in checks:
        ok &= good
        lines.append(f"{'ok  ' if good else 'FAIL'} {what}")
    return ok, lines
