"""Start one sandboxed kernel and report what it can and cannot reach.

``python -m coursekit check`` (and the tests) use :func:`probe` to run a
snippet in a kernel started exactly as the autograder starts it. It lists
the kernel's open file descriptors, its environment, which of the
course's paths it can read, what it can import, the processes it can see,
and, after shutdown, the processes left on its uid (there must be none:
the probe starts a background process that tries to outlive it).
"""
from __future__ import annotations

import json
import os
import tempfile
import time

from coursekit import pipeline

PROBE = r'''
import json, os, resource, socket, subprocess, sys
res = {"uid": os.getuid(), "pid": os.getpid(), "cwd": os.getcwd()}
fds = {}
for fd in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        fds[fd] = "?"
res["fds"] = fds
# Directory descriptors could reach below the hiding mounts: try them.
res["fd_escape"] = []
for fd, target in fds.items():
    try:
        names = os.listdir(int(fd))
        res["fd_escape"].append([target, names[:5]])
    except OSError:
        pass
res["env"] = dict(os.environ)
# The kernel's cgroup limits (coursekit.sandbox.make_cgroups), as the
# Linux kernel applies them to it and everything it starts.
res["cgroup"] = {}
try:
    for line in open("/proc/self/cgroup"):
        _, ctrls, path = line.rstrip("\n").split(":", 2)
        for c, files in (("memory", ("memory.limit_in_bytes",)),
                         ("pids", ("pids.max",)),
                         ("cpu", ("cpu.cfs_quota_us",)),
                         ("", ("memory.max", "pids.max", "cpu.max"))):
            if c in (ctrls.split(",") if ctrls else [""]):
                base = os.path.join("/sys/fs/cgroup", c, path.lstrip("/"))
                for name in files:
                    try:
                        res["cgroup"][name] = open(os.path.join(
                            base, name)).read().strip()
                    except OSError:
                        pass
except OSError:
    pass
try:
    res["proc_environ"] = open("/proc/self/environ", "rb").read().decode(
        errors="replace")
except OSError:
    res["proc_environ"] = ""
def can_read(p):
    try:
        if os.path.isdir(p):
            return sorted(os.listdir(p))
        open(p, "rb").read(1)
        return True
    except OSError:
        return False
res["read"] = {p: can_read(p) for p in PATHS}
res["imports"] = {}
for mod in IMPORTS:
    try:
        __import__(mod)
        res["imports"][mod] = True
    except ImportError as exc:
        res["imports"][mod] = str(exc)[:200]
res["procs"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
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
# A background process that tries to outlive the kernel.
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for fd in range(3, 256):
            try:
                os.close(fd)
            except OSError:
                pass
        import time
        time.sleep(600)
    os._exit(0)
res["extra"] = globals().get("EXTRA")
print("PROBE" + json.dumps(res))
'''

SECRET_VAR = "COURSEKIT_SELFCHECK_SECRET"


def probe(paths, port: int = 1, cwd=None, settings=None,
          imports=("numpy", "dlopt", "dlopt.grading", "torch",
                   "coursekit"), extra: str = "") -> dict:
    """Run PROBE in a sandboxed kernel; return its findings.

    ``extra``: code run first; what it leaves in a global ``EXTRA`` comes
    back as ``res["extra"]``.

    The grader's environment holds a made-up secret while the kernel
    starts (``COURSEKIT_SELFCHECK_SECRET``); ``res["secret_seen"]`` says
    whether it reached the kernel. ``res["left"]`` lists the processes
    still running on the kernel's uid after shutdown.
    """
    from nbclient.util import run_sync

    from coursekit.execute import SandboxKernelManager
    from coursekit.sandbox import orphans
    secret = f"s3cret-{os.getpid()}-{time.time_ns()}"
    saved = os.environ.get(SECRET_VAR)
    os.environ[SECRET_VAR] = secret
    km = SandboxKernelManager(sandbox_settings=settings or {})
    cwd = cwd or tempfile.mkdtemp(prefix="ck-probe-")
    try:
        run_sync(km.start_kernel)(cwd=str(cwd))
    finally:
        if saved is None:
            os.environ.pop(SECRET_VAR, None)
        else:
            os.environ[SECRET_VAR] = saved
    kc = km.client()
    kc.start_channels()
    out = []
    try:
        run_sync(kc.wait_for_ready)(timeout=60)
        code = (f"PATHS = {list(map(str, paths))!r}\nPORT = {port}\n"
                f"IMPORTS = {list(imports)!r}\n"
                f"REPO = {str(pipeline.REPO)!r}\n" + extra + "\n" + PROBE)
        run_sync(kc.execute_interactive)(
            code, timeout=60,
            output_hook=lambda m: out.append(m["content"].get("text", "")))
    finally:
        kc.stop_channels()
        run_sync(km.shutdown_kernel)(now=True)
    text = "".join(out)
    res = json.loads(text.split("PROBE", 1)[1].strip().splitlines()[0])
    res["secret_seen"] = secret in json.dumps(res)
    left = []
    if os.geteuid() == 0:
        for _ in range(50):        # the launcher cleans up as it exits
            left = orphans([res["uid"]])
            if not left:
                break
            time.sleep(0.1)
    res["left"] = left
    return res


def run(environ=None):
    """(ok, report lines) for ``python -m coursekit check``; ``environ``:
    the grader's settings (default ``os.environ``)."""
    from coursekit import heldout
    from coursekit.execute import default_sandbox_settings
    env = os.environ if environ is None else environ
    repo = pipeline.REPO
    grading = env.get("COURSE_GRADING_DIR", str(repo / "_grading"))
    secret = [repo / "solutions", repo / ".git", repo / "tests",
              repo / "coursekit", repo / "node_modules", repo / "_build",
              grading, "/root", "/etc/shadow"]
    lines, ok = [], True
    private = heldout.configured(env)
    if private is not None:
        # a06's private held-out digits: the file and its folder
        secret += [private, private.parent]
        try:
            _, _, labels = heldout.check_configured(env)
            lines.append(f"ok   a06's private held-out digits: "
                         f"{len(labels)} in {private}")
        except heldout.HeldoutError as exc:
            ok = False
            lines.append(f"FAIL {exc}")
    res = probe(secret + [repo / "dlopt"],
                settings={"forbid": ["torch", "dlopt.losses"],
                          "hide": default_sandbox_settings(env)["hide"]},
                imports=("numpy", "dlopt.grading", "torch", "dlopt.losses",
                         "coursekit"))
    kept = {".pyenv", ".venv", ".local"}
    for p in secret:
        seen = res["read"][str(p)]
        bad = bool(set(seen) - kept) if isinstance(seen, list) else seen
        ok &= not bad
        lines.append(f"{'FAIL' if bad else 'ok  '} cannot read {p}")
    fds = res["fds"]
    # The kernel opens sockets, pipes and files of its own; anything else
    # (a path of the grader's) would have been inherited.
    extra_fds = {k: v for k, v in fds.items()
                 if int(k) > 2 and v not in ("?", "/dev/null")
                 and not v.startswith(("socket:", "pipe:", "anon_inode:",
                                       res["cwd"] + "/"))}
    cg = res.get("cgroup") or {}
    mem = cg.get("memory.limit_in_bytes") or cg.get("memory.max")
    limited = str(mem).isdigit() and int(mem) < 1 << 50
    lines.append(("ok   " if limited else "WARN ")
                 + ("memory, processes and CPU limited per kernel "
                    f"(cgroup: {cg})" if limited else
                    "no cgroup on this machine: the kernel's memory, "
                    "processes and CPU are limited per process only "
                    "(docs/grading.md, Known limits)"))
    env_keys = sorted(res["env"])
    here = res["cwd"].rstrip("/") + "/"
    config_in_cwd = sorted(
        k for k in ("HOME", "IPYTHONDIR", "JUPYTER_CONFIG_DIR",
                    "JUPYTER_DATA_DIR", "MPLCONFIGDIR")
        if (os.path.normpath(res["env"].get(k, here)) + "/").startswith(
            here)) + ([] if res["env"].get("PYTHONSAFEPATH") == "1"
                      else ["PYTHONSAFEPATH"])
    checks = [
        (res["pid"] == 1 or os.geteuid() != 0,
         f"is PID {res['pid']} of its own PID namespace"),
        (len(res["procs"]) < 10, f"sees {len(res['procs'])} processes "
         f"(its own namespace only)"),
        (not res["fd_escape"], "no directory descriptor to escape through"
         + (f": {res['fd_escape']}" if res["fd_escape"] else "")),
        (not extra_fds, "no inherited file descriptors"
         + (f": {extra_fds}" if extra_fds else "")),
        (not res["secret_seen"], "nothing of the grader's environment"),
        (not any(k.startswith("COURSE") for k in env_keys),
         f"environment built from scratch: {', '.join(env_keys)}"),
        (res["imports"].get("dlopt.grading") is True,
         "can import dlopt.grading (the visible tests' helpers)"),
        (res["imports"].get("torch") is not True,
         "a forbidden package (torch) is absent"),
        (res["imports"].get("dlopt.losses") is not True,
         "a forbidden module (dlopt.losses) is absent"),
        (res["imports"].get("coursekit") is not True,
         "the grader (coursekit) is not reachable"),
        (not config_in_cwd, "reads no configuration from the submission "
         "(HOME, IPython's, Jupyter's, matplotlib's folders elsewhere; "
         "the working directory not on sys.path at start)"
         + (f": {config_in_cwd}" if config_in_cwd else "")),
        (not res["network"] and not res["loopback"], "no network"),
        (not res["write_repo"], "cannot write the course"),
        (res["uid"] != 0, f"runs as uid {res['uid']}, not root"),
        (not res["left"], "no process left after shutdown"
         + (f": {res['left']}" if res["left"] else "")),
    ]
    for good, what in checks:
        ok &= bool(good)
        lines.append(f"{'ok  ' if good else 'FAIL'} {what}")
    return ok, lines
