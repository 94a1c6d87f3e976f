"""Kernel launcher that runs a submission in a sandbox (no Docker).

The autograder starts every student kernel as
``python -m coursekit.sandbox -f CONNECTION_FILE`` (see
:mod:`coursekit.execute`). Before the IPython kernel starts, this module:

1. enters new mount and network namespaces (``unshare``): the kernel has
   no network at all, not even loopback (the grader talks to it over
   Unix sockets, ZeroMQ's ``ipc`` transport, which namespaces don't cut);
2. hides the course (``solutions/``, the gradebook, every submission, the
   git history, ``/tmp``, ``/home``, ``/root``, ``/run``) under empty
   read-only tmpfs mounts and binds back, read-only, only what the kernel
   needs: the virtual environment and the ``dlopt``/``coursekit``
   packages. The submission's own folder is copied into a private,
   size-limited tmpfs, which is the kernel's working directory and HOME;
3. sets resource limits: address space (a memory bomb gets a
   MemoryError), CPU seconds, file size, number of processes, no core
   dumps;
4. drops to an unprivileged uid of its own (when started as root, as in
   CI): ``uid_base + slot`` with a slot locked per running kernel, so two
   kernels graded in parallel never share a uid (same-uid processes could
   ptrace each other or read each other's ``/proc/PID/root``); no
   supplementary groups, no passwd entry needed; the environment is
   cleared (the database URL in particular);
5. imports numpy, torch and dlopt and records their pristine state
   (:mod:`coursekit.guard`) before any student code runs.

Without root, step 1 uses a user namespace when the kernel allows it and
step 4 is skipped (the grader's own user then runs the code, still hidden
from the course's files); if no namespace can be made at all the kernel
refuses to start unless ``COURSEKIT_SANDBOX`` says ``"require": false``.

Settings come from the JSON in the environment variable
``COURSEKIT_SANDBOX``, written by the grader, never by the student.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import sys

DEFAULTS = dict(
    uid_base=3_000_000, slots=64, slot_dir="/run/coursekit-sandbox",
    memory_mb=3072, cpu_seconds=600, file_mb=64,
    nproc=512, tmp_mb=256, hide=[], keep=[], preload=["numpy", "dlopt",
                                                      "dlopt.grading",
                                                      "torch"],
    require=True,
)

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong,
                                                 ctypes.c_char_p]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src, target, fstype, flags, data=None) -> None:
    def enc(s):
        return s.encode() if isinstance(s, str) else s
    _check(_libc.mount(enc(src), enc(target), enc(fstype), flags,
                       enc(data)), f"mount {target}")


def _unshare(as_root: bool) -> str:
    """Enter new mount + network namespaces; return how."""
    uid, gid = os.getuid(), os.getgid()
    if as_root:
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC),
               "unshare")
        return "root"
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET
                         | CLONE_NEWIPC), "unshare(user)")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    return "userns"


def _take_slot(cfg) -> int:
    """A uid of its own for this kernel, held until the kernel exits.

    Kernels graded in parallel must not share a uid: processes of the
    same uid can ptrace each other and read each other's /proc/PID/root.
    Slot N is ``uid_base + N``, locked with flock on a root-owned file;
    the lock lives as long as this process. No passwd entry is needed.
    """
    import fcntl
    os.makedirs(cfg["slot_dir"], mode=0o700, exist_ok=True)
    for n in range(cfg["slots"]):
        fd = os.open(os.path.join(cfg["slot_dir"], f"slot-{n}"),
                     os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return cfg["uid_base"] + n
    raise SystemExit("coursekit.sandbox: all sandbox slots are in use")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _copy_regular(src: str, dst: str) -> None:
    """Copy the submission's folder: directories and regular files only."""
    os.makedirs(dst, exist_ok=True)
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        if entry.is_dir(follow_symlinks=False):
            _copy_regular(entry.path, target)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, target)


def _isolate_files(cfg, workdir_src: str, runtime_dir: str, uid, gid):
    """Hide the course's files; return the private working directory."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = [os.path.realpath(p) for p in cfg["keep"] if os.path.exists(p)]
    fds = {p: os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in keep}
    rt_fd = os.open(runtime_dir, os.O_RDONLY | os.O_DIRECTORY)
    src_fd = os.open(workdir_src, os.O_RDONLY | os.O_DIRECTORY)
    hide = sorted({os.path.realpath(p) for p in cfg["hide"]
                   if os.path.isdir(p)} | {"/tmp"}, key=len)
    hide = [h for h in hide if not any(_under(h, o) and h != o
                                        for o in hide)]
    for h in hide:
        size = f"{cfg['tmp_mb']}m" if h == "/tmp" else "1m"
        _mount("sandbox", h, "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={size},mode=0755")
    for p in sorted(keep, key=len):
        if not any(_under(p, h) for h in hide):
            continue
        os.makedirs(p, exist_ok=True)
        _mount(f"/proc/self/fd/{fds[p]}", p, None, MS_BIND | MS_REC)
        try:
            _mount(None, p, None,
                   MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
        except OSError:
            if uid is not None:   # as root this must work
                raise
    os.makedirs(runtime_dir, exist_ok=True)
    _mount(f"/proc/self/fd/{rt_fd}", runtime_dir, None, MS_BIND)
    work = "/tmp/student"
    _copy_regular(f"/proc/self/fd/{src_fd}", work)
    for fd in (*fds.values(), rt_fd, src_fd):
        os.close(fd)
    # Everything else hidden stays read-only, root-owned and empty.
    for h in hide:
        if h != "/tmp":
            try:
                _mount(None, h, None,
                       MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
            except OSError:
                if uid is not None:
                    raise
    if uid is not None:
        for d, _, files in os.walk(work):
            os.chown(d, uid, gid)
            for f in files:
                os.lchown(os.path.join(d, f), uid, gid)
        os.chown(runtime_dir, uid, gid)
        for f in os.listdir(runtime_dir):
            os.chown(os.path.join(runtime_dir, f), uid, gid)
    return work


def _limits(cfg) -> None:
    mb = 1024 * 1024
    for res, val in ((resource.RLIMIT_AS, cfg["memory_mb"] * mb),
                     (resource.RLIMIT_CPU, cfg["cpu_seconds"]),
                     (resource.RLIMIT_FSIZE, cfg["file_mb"] * mb),
                     (resource.RLIMIT_NPROC, cfg["nproc"]),
                     (resource.RLIMIT_CORE, 0)):
        if val:
            resource.setrlimit(res, (val, val))


def _clean_env(work: str) -> None:
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL",
                                       "NBGRADER_EXECUTION",
                                       "PYDEVD_DISABLE_FILE_VALIDATION")
            if k in os.environ}
    os.environ.clear()
    os.environ.update(keep, HOME=work, USER="student", LOGNAME="student",
                      TMPDIR=work, MPLBACKEND="Agg",
                      OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                      MKL_NUM_THREADS="1", PYTHONNOUSERSITE="1",
                      MPLCONFIGDIR=os.path.join(work, ".mpl"),
                      IPYTHONDIR=os.path.join(work, ".ipython"),
                      JUPYTER_RUNTIME_DIR=os.path.join(work, ".runtime"))


def prepare(argv: list[str]) -> dict:
    """Steps 1-4 of the module docstring; return what was done."""
    cfg = dict(DEFAULTS, **json.loads(os.environ.get("COURSEKIT_SANDBOX",
                                                     "{}")))
    conn = argv[argv.index("-f") + 1]
    runtime_dir = os.path.dirname(os.path.abspath(conn))
    as_root = os.geteuid() == 0
    uid = gid = _take_slot(cfg) if as_root else None
    try:
        how = _unshare(as_root)
    except OSError as exc:
        if cfg["require"]:
            raise SystemExit(f"coursekit.sandbox: cannot isolate the "
                             f"kernel ({exc}); grading refused") from None
        how = "none"
    work = os.getcwd()
    if how != "none":
        work = _isolate_files(cfg, os.getcwd(), runtime_dir, uid, gid)
    _limits(cfg)
    if uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    _clean_env(work)
    os.chdir(work)
    return dict(isolation=how, uid=os.getuid(), work=work,
                preload=cfg["preload"])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    info = prepare(argv)
    import importlib
    for mod in info.pop("preload"):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass
    from coursekit import guard
    guard.snapshot()
    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    quiet = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1), os.dup(2)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    try:
        app.initialize(argv)   # its connection banner is not wanted
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    guard.snapshot_shell(app.shell)
    app.start()


if __name__ == "__main__":
    main()
