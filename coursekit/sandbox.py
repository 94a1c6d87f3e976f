"""Kernel launcher: run a submission in a sandbox that holds nothing.

The autograder starts every student kernel as
``python -m coursekit.sandbox -f CONNECTION_FILE`` (see
:mod:`coursekit.execute`), with its settings as JSON in the environment
variable ``COURSEKIT_SANDBOX``. This launcher (root in CI, as on a grading
server) then:

1. takes a sandbox *slot*, an unprivileged uid of its own
   (``uid_base + slot``, locked with ``flock`` by this launcher, which
   stays alive as the kernel's parent);
2. enters new mount, network, IPC and PID namespaces. The kernel is
   PID 1 of its PID namespace: when it exits, or the launcher dies (the
   kernel has ``PR_SET_PDEATHSIG``), the Linux kernel kills every process
   left in it, so a background process (``fork`` + ``setsid``) cannot
   survive to meddle with the next kernel on that uid. Before releasing the
   slot the launcher also kills anything still running on its uid;
3. hides the course under empty read-only tmpfs mounts (the repository,
   ``solutions/``, the gradebook, every submission, ``.git``, ``/tmp``,
   ``/root``, ``/home``, ``/run``, ...), mounts a fresh ``/proc`` (only the
   sandbox's own processes), binds back read-only the Python environment
   and a *filtered* copy of ``dlopt``: modules the assignment forbids are
   replaced by a stub that raises ``ImportError`` (their code is not in the
   kernel's view at all), and forbidden packages (``torch`` for NumPy-only
   assignments) are covered by such a stub. ``coursekit`` (the grader, its
   checks) is not reachable. The submission's folder is copied into a
   private, size-limited tmpfs, the kernel's working directory (its HOME
   and every configuration folder are new and empty: nothing submitted
   runs as the kernel starts);
4. sets resource limits (address space, CPU seconds, file size, number of
   processes, no core dumps), drops to the slot's uid with no groups,
   closes every inherited file descriptor but 0, 1 and 2 (which point at
   ``/dev/null``), and ``execve``\\ s the IPython kernel with an environment
   built from scratch: nothing of the grader's environment (the gradebook
   URL and its password in particular) is ever in the kernel's memory.

Without root, step 2 uses a user namespace when the Linux kernel allows it
and the uid stays the caller's (still hidden from the course's files); if
no namespace can be made the launcher refuses to start unless the settings
say ``"require": false`` (development only).

Nothing here is a defence *inside* the kernel: the student's code may do
anything there. The verdict is reached outside (:mod:`coursekit.judge`).
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import sys

DEFAULTS = dict(
    uid_base=3_000_000, slots=64, slot_dir="/run/coursekit-sandbox",
    memory_mb=3072, cpu_seconds=600, file_mb=64,
    nproc=256, tmp_mb=256, hide=[], keep=[],
    cpus=1.0,             # CPU time per kernel, in cores (cgroup)
    cgroups=True,         # a cgroup per kernel where the machine has them
    forbid=[],            # modules/packages absent from the kernel's view
    dlopt_dir=None,       # the dlopt package to copy (filtered)
    require=True,
)

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong,
                                                 ctypes.c_char_p]

WORK = "/tmp/student"
# The kernel's HOME and the folders where IPython, Jupyter and matplotlib
# look for configuration and startup files: new and empty, never the
# submission's folder (whose ``.ipython/profile_default/startup/*.py`` or
# ``.jupyter/*_config.py`` would run as the kernel starts, before the
# first cell and off the grader's clock).
HOME = "/tmp/home"
PKGS = "/tmp/.coursekit-pkgs"      # root-owned, read-only for the kernel

STUB = '''"""Not available while grading (coursekit.sandbox)."""
raise ImportError(
    "{name} is not available in this assignment's grading: the question "
    "asks for your own code (NumPy), not {name}.", name={name!r})
'''


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src, target, fstype, flags, data=None) -> None:
    def enc(s):
        return s.encode() if isinstance(s, str) else s
    _check(_libc.mount(enc(src), enc(target), enc(fstype), flags,
                       enc(data)), f"mount {target}")


def unmount(target: str) -> None:
    """Detach the mount at ``target`` (MNT_DETACH; errors ignored)."""
    _libc.umount2(target.encode(), 2)


def settings() -> dict:
    return dict(DEFAULTS, **json.loads(os.environ.get("COURSEKIT_SANDBOX",
                                                      "{}")))


# -- slots ---------------------------------------------------------------
def _take_slot(cfg) -> tuple[int, int]:
    """(uid, lock fd): a uid of its own for this kernel.

    Kernels graded in parallel never share a uid (same-uid processes could
    signal or trace each other). The lock is held by this launcher, which
    outlives the kernel and cleans the uid before letting it go.
    """
    import fcntl
    os.makedirs(cfg["slot_dir"], mode=0o700, exist_ok=True)
    for n in range(cfg["slots"]):
        fd = os.open(os.path.join(cfg["slot_dir"], f"slot-{n}"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        uid = cfg["uid_base"] + n
        kill_uid(uid)          # a leftover of an earlier launcher
        return uid, fd
    raise SystemExit("coursekit.sandbox: all sandbox slots are in use")


def uid_processes(uid: int) -> list[int]:
    """PIDs (in this /proc) whose real uid is ``uid``, zombies excepted:
    a process that has exited and waits to be reaped (a kernel killed
    with its launcher is reaped by init, in its own time) runs no code
    and holds nothing but its process-table entry."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                for line in f:
                    if line.startswith("State:") and \
                            line.split()[1:2] == ["Z"]:
                        break
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(name))
                        break
        except OSError:
            continue
    return pids


def _ppid_cmd(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        return ppid, cmd
    except (OSError, ValueError, IndexError):
        return None, ""


def orphans(uids) -> list:
    """(uid, pid, command) of processes on these uids that no live grader
    owns: not below a launcher whose own parent is still there. (A kernel
    another grader is running right now on a reused slot is owned.)"""
    left = []
    for uid in uids:
        for pid in uid_processes(uid):
            p, owned = pid, False
            for _ in range(64):
                ppid, cmd = _ppid_cmd(p)
                if ppid is None:
                    break
                if "coursekit.sandbox" in cmd:
                    owned = ppid not in (0, 1) and \
                        _ppid_cmd(ppid)[0] is not None
                    break
                p = ppid
            if not owned:
                left.append((uid, pid, _ppid_cmd(pid)[1][:80]))
    return left


def kill_uid(uid: int, rounds: int = 20) -> None:
    """SIGKILL every process of ``uid`` until none is left."""
    import time
    for _ in range(rounds):
        pids = uid_processes(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


# -- a cgroup per kernel -----------------------------------------------------
# rlimits are per process: a kernel that forks busy children (each in a
# session of its own, so with its own share of the scheduler) or children
# of 1.5 GB each slows or starves every other kernel on the machine. As
# root the launcher puts the kernel, and all it starts, in cgroups of the
# slot's own: memory (``memory_mb`` for all of them), pids (``nproc``)
# and cpu (``cpus`` cores' worth of time). Where the machine has no
# writable cgroup hierarchy (cgroup v1 controllers, or v2 with them
# enabled) the kernel runs without, and the self-check says so.
CGROUP_ROOT = "/sys/fs/cgroup"


def _own_cgroups() -> dict:
    """controller -> this process's cgroup path ("" key: cgroup v2)."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def _cgroup_files(cfg, name: str) -> list[tuple[str, dict]]:
    """[(folder, {file: value})] of the cgroups to make for one kernel."""
    mem = str(int(cfg["memory_mb"]) * 1024 * 1024)
    pids = str(int(cfg["nproc"]))
    period = 100_000
    quota = str(max(1000, int(float(cfg["cpus"]) * period)))
    own = _own_cgroups()
    v1 = {"memory": {"memory.limit_in_bytes": mem},
          "pids": {"pids.max": pids},
          "cpu": {"cpu.cfs_period_us": str(period),
                  "cpu.cfs_quota_us": quota}}
    if all(os.path.isdir(os.path.join(CGROUP_ROOT, c)) and c in own
           for c in v1):
        return [(os.path.join(CGROUP_ROOT, c, own[c].lstrip("/"), name), f)
                for c, f in v1.items()]
    if "" in own and os.path.exists(os.path.join(CGROUP_ROOT,
                                                 "cgroup.controllers")):
        base = os.path.join(CGROUP_ROOT, own[""].lstrip("/"))
        with open(os.path.join(base, "cgroup.subtree_control")) as f:
            enabled = set(f.read().split())
        if {"memory", "pids", "cpu"} <= enabled:
            return [(os.path.join(base, name),
                     {"memory.max": mem, "memory.swap.max": "0",
                      "pids.max": pids, "cpu.max": f"{quota} {period}"})]
    raise OSError("no writable cgroup hierarchy with the memory, pids and "
                  "cpu controllers")


def make_cgroups(cfg, uid: int) -> list[str]:
    """The slot's cgroups, with the kernel's limits: their folders. They
    stay when the kernel is gone (removing one waits until the Linux
    kernel has let go of its processes: 0.1-0.15 s a kernel, measured),
    empty, and the slot's next kernel uses them again: at most ``slots``
    of each, whatever happens to the launchers."""
    made = []
    for folder, files in _cgroup_files(cfg, f"coursekit-{uid}"):
        os.makedirs(folder, exist_ok=True)
        made.append(folder)
        for name, value in files.items():
            path = os.path.join(folder, name)
            if os.path.exists(path):
                with open(path, "w") as f:
                    f.write(value)
    return made


def join_cgroups(folders, pid: int) -> None:
    for folder in folders:
        with open(os.path.join(folder, "cgroup.procs"), "w") as f:
            f.write(str(pid))


# -- namespaces and files --------------------------------------------------
def _unshare(as_root: bool) -> str:
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID
    if as_root:
        _check(_libc.unshare(flags), "unshare")
        return "root"
    _check(_libc.unshare(flags | CLONE_NEWUSER), "unshare(user)")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    return "userns"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _copy_regular(src: str, dst: str, depth: int = 0) -> None:
    """Copy a folder: directories and regular files only, no links."""
    os.makedirs(dst, exist_ok=True)
    if depth > 20:
        return
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        if entry.is_dir(follow_symlinks=False):
            _copy_regular(entry.path, target, depth + 1)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, target, follow_symlinks=False)


def _filtered_dlopt(src: str, dst: str, forbid: list[str],
                    name: str = "dlopt") -> None:
    """Copy the dlopt package; a forbidden module becomes a stub.

    ``forbid`` holds dotted names (``dlopt.losses``, ``dlopt.optim``); a
    forbidden package is replaced whole. Only ``.py`` files are copied.
    """
    os.makedirs(dst, exist_ok=True)
    for entry in os.scandir(src):
        if entry.name == "__pycache__" or entry.is_symlink():
            continue
        if entry.is_dir():
            sub = f"{name}.{entry.name}"
            target = os.path.join(dst, entry.name)
            if _forbidden(sub, forbid):
                os.makedirs(target)
                with open(os.path.join(target, "__init__.py"), "w") as f:
                    f.write(STUB.format(name=sub))
            else:
                _filtered_dlopt(entry.path, target, forbid, sub)
        elif entry.is_file() and entry.name.endswith(".py"):
            mod = entry.name[:-3]
            full = name if mod == "__init__" else f"{name}.{mod}"
            target = os.path.join(dst, entry.name)
            if mod != "__init__" and _forbidden(full, forbid):
                with open(target, "w") as f:
                    f.write(STUB.format(name=full))
            else:
                shutil.copyfile(entry.path, target)


def _forbidden(name: str, forbid: list[str]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbid)


def _site_packages(keep: list[str]) -> list[str]:
    return [p for p in keep if p.rstrip("/").endswith("site-packages")]


def _isolate_files(cfg, workdir_src: str, runtime_dir: str, uid, gid):
    """Hide the course's files; return the private working directory."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Our own /proc: only the processes of this PID namespace.
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    keep = [os.path.realpath(p) for p in cfg["keep"] if os.path.exists(p)]
    fds = {p: os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in keep}
    rt_fd = os.open(runtime_dir, os.O_RDONLY | os.O_DIRECTORY)
    src_fd = os.open(workdir_src, os.O_RDONLY | os.O_DIRECTORY)
    dl_fd = None
    if cfg.get("dlopt_dir") and os.path.isdir(cfg["dlopt_dir"]):
        dl_fd = os.open(cfg["dlopt_dir"], os.O_RDONLY | os.O_DIRECTORY)
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
    # Forbidden packages in site-packages: covered by a stub.
    for name in cfg["forbid"]:
        if "." in name or name == "dlopt":
            continue
        for sp in _site_packages(keep):
            target = os.path.join(sp, name)
            if os.path.isdir(target):
                _mount("sandbox", target, "tmpfs", MS_NOSUID | MS_NODEV,
                       "size=64k,mode=0755")
                with open(os.path.join(target, "__init__.py"), "w") as f:
                    f.write(STUB.format(name=name))
                try:
                    _mount(None, target, None, MS_REMOUNT | MS_RDONLY
                           | MS_NOSUID | MS_NODEV)
                except OSError:
                    if uid is not None:
                        raise
    os.makedirs(runtime_dir, exist_ok=True)
    _mount(f"/proc/self/fd/{rt_fd}", runtime_dir, None, MS_BIND)
    os.makedirs(WORK, mode=0o700, exist_ok=True)
    _copy_regular(f"/proc/self/fd/{src_fd}", WORK)
    os.makedirs(HOME, mode=0o700)
    os.makedirs(PKGS, mode=0o755, exist_ok=True)
    if dl_fd is not None:
        _filtered_dlopt(f"/proc/self/fd/{dl_fd}",
                        os.path.join(PKGS, "dlopt"), cfg["forbid"])
    for fd in (*fds.values(), rt_fd, src_fd, dl_fd):
        if fd is not None:
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
        for d, _, files in os.walk(WORK):
            os.chown(d, uid, gid)
            for f in files:
                os.lchown(os.path.join(d, f), uid, gid)
        os.chown(HOME, uid, gid)
        os.chown(runtime_dir, uid, gid)
        for f in os.listdir(runtime_dir):
            os.chown(os.path.join(runtime_dir, f), uid, gid)
    return WORK


def _limits(cfg) -> None:
    mb = 1024 * 1024
    for res, val in ((resource.RLIMIT_AS, cfg["memory_mb"] * mb),
                     (resource.RLIMIT_CPU, cfg["cpu_seconds"]),
                     (resource.RLIMIT_FSIZE, cfg["file_mb"] * mb),
                     (resource.RLIMIT_NPROC, cfg["nproc"]),
                     (resource.RLIMIT_CORE, 0)):
        if val:
            resource.setrlimit(res, (val, val))


def kernel_env(work: str, path: str, home: str) -> dict:
    """The kernel's whole environment, built from scratch: configuration
    only from the empty ``home`` (see ``HOME``), never from ``work``."""
    return dict(
        PATH=path, HOME=home, USER="student", LOGNAME="student",
        LANG="C.UTF-8", TMPDIR=work, MPLBACKEND="Agg",
        PYTHONPATH=PKGS, PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1",
        PYTHONSAFEPATH="1",
        OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
        MPLCONFIGDIR=os.path.join(home, ".mpl"),
        IPYTHONDIR=os.path.join(home, ".ipython"),
        JUPYTER_CONFIG_DIR=os.path.join(home, ".jupyter"),
        JUPYTER_DATA_DIR=os.path.join(home, ".local", "share", "jupyter"),
        JUPYTER_RUNTIME_DIR=os.path.join(home, ".runtime"),
        PYDEVD_DISABLE_FILE_VALIDATION="1")


def _child(cfg, conn: str, as_root: bool, uid, how: str, alive_r: int):
    """PID 1 of the new namespace: isolate, drop privileges, exec."""
    gid = uid
    runtime_dir = os.path.dirname(os.path.abspath(conn))
    work, home = os.getcwd(), HOME
    if how != "none":
        work = _isolate_files(cfg, os.getcwd(), runtime_dir, uid, gid)
    else:                  # development only: nothing is hidden anyway
        import tempfile
        home = tempfile.mkdtemp(prefix="coursekit-home-")
    _limits(cfg)
    if uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    os.chdir(work)
    # Die with the launcher (set after setuid, which clears it).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    import select
    if select.select([alive_r], [], [], 0)[0]:   # EOF: launcher is gone
        os._exit(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, 1 << 16)
    python = sys.executable
    path = os.pathsep.join([os.path.dirname(python), "/usr/bin", "/bin"])
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # -P: the working directory (the submission) is not on sys.path while
    # the kernel starts, so no submitted ipykernel_launcher.py (or any
    # module the start imports) replaces the real one.
    os.execve(python, [python, "-P", "-m", "ipykernel_launcher", "-f",
                       conn, "--HistoryManager.enabled=False"],
              kernel_env(work, path, home))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    # The launcher dies with the grader that started it (then the kernel
    # dies with the launcher): a killed grading worker leaves nothing.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        raise SystemExit("coursekit.sandbox: the grader is gone")
    cfg = settings()
    conn = argv[argv.index("-f") + 1]
    as_root = os.geteuid() == 0
    uid, slot_fd = _take_slot(cfg) if as_root else (None, None)
    try:
        how = _unshare(as_root)
    except OSError as exc:
        if cfg["require"]:
            raise SystemExit(f"coursekit.sandbox: cannot isolate the "
                             f"kernel ({exc}); grading refused") from None
        how = "none"
    groups = []
    if uid is not None and cfg["cgroups"]:
        try:
            groups = make_cgroups(cfg, uid)
        except OSError as exc:
            sys.stderr.write(f"coursekit.sandbox: no cgroup for this "
                             f"kernel ({exc}): its limits are per "
                             f"process only\n")
    alive_r, alive_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(alive_w)
        os.close(go_w)
        os.read(go_r, 1)            # in its cgroups before anything runs
        os.close(go_r)
        try:
            _child(cfg, conn, as_root, uid, how, alive_r)
        except BaseException as exc:  # noqa: BLE001
            sys.stderr.write(f"coursekit.sandbox: {exc}\n")
        os._exit(70)
    os.close(alive_r)
    os.close(go_r)
    try:
        join_cgroups(groups, pid)
    except OSError as exc:
        sys.stderr.write(f"coursekit.sandbox: could not enter the "
                         f"kernel's cgroup ({exc})\n")
    os.write(go_w, b"g")
    os.close(go_w)
    # The launcher: forward termination, wait, clean the uid, release.
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the kernel handles it

    def stop(signum, frame):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    status = 0
    while True:
        try:
            _, st = os.waitpid(pid, 0)
            status = os.waitstatus_to_exitcode(st)
            break
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    if uid is not None:
        kill_uid(uid)
        os.close(slot_fd)
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
