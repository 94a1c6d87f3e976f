"""A private PostgreSQL server on loopback, for tests and benchmarks.

``PrivateServer(dir).start()`` runs ``initdb`` and ``pg_ctl`` from
Debian's ``postgresql`` package (``/usr/lib/postgresql/*/bin``) in a
temporary directory, on a free port of 127.0.0.1, with its Unix socket in
that directory too; ``url`` is the SQLAlchemy URL for nbgrader's
``db_url``. PostgreSQL refuses to run as root: as root the server runs as
the ``postgres`` user the package creates (or ``coursekit-pg``, created
on demand). Nothing touches the system's own cluster.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise FileNotFoundError(
            f"PostgreSQL's {name} not found: install Debian's postgresql "
            f"package (.ci/run does)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "coursekit-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", "coursekit-pg"], check=True)
    return "coursekit-pg"


class PrivateServer:
    def __init__(self, directory, dbname: str = "gradebook"):
        self.dir = Path(directory).resolve()
        self.data = self.dir / "data"
        self.port = _free_port()
        self.dbname = dbname
        self.user = _server_user()

    @property
    def url(self) -> str:
        return (f"postgresql+psycopg2://grader@127.0.0.1:{self.port}/"
                f"{self.dbname}")

    def _run(self, *cmd, check=True):
        pre = []
        if self.user:
            pre = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}",
                   "--init-groups", "--"]
        return subprocess.run(pre + list(cmd), check=check,
                              capture_output=True, text=True,
                              cwd=self.dir, timeout=120)

    def start(self) -> "PrivateServer":
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "grader",
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.dir} -c fsync=off "
                f"-c max_connections=100 -c full_page_writes=off")
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts,
                  "-l", str(self.dir / "server.log"), "-w", "-t", "60",
                  "start")
        self._run(pg_bin("createdb"), "-h", "127.0.0.1", "-p",
                  str(self.port), "-U", "grader", self.dbname)
        return self

    def reset(self, dbname: str) -> str:
        """A fresh, empty database ``dbname``; return its URL."""
        for cmd in ("dropdb", "createdb"):
            self._run(pg_bin(cmd), "-h", "127.0.0.1", "-p", str(self.port),
                      "-U", "grader", *(["--if-exists"] if cmd == "dropdb"
                                        else []), dbname)
        return self.url.rsplit("/", 1)[0] + "/" + dbname

    def stop(self) -> None:
        if self.data.exists():
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast",
                      "-w", "stop", check=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def wait_ready(url: str, timeout: float = 30) -> None:
    import sqlalchemy
    deadline = time.monotonic() + timeout
    while True:
        try:
            sqlalchemy.create_engine(url).connect().close()
            return
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
