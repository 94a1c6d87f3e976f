"""One object for the course's configuration, built once per command.

Every stage (release, collect, autograde, feedback, export) takes a
:class:`CourseConfig` instead of reading ``os.environ`` itself. It is built
once, from the ``COURSE_*`` environment variables and the command line::

    cfg = CourseConfig.from_env(grading_dir="/srv/grading", workers=2)

and :meth:`CourseConfig.env` gives the environment for nbgrader
subprocesses: ``nbgrader_config.py`` keeps reading ``COURSE_*`` variables,
because nbgrader runs in processes of its own. Nothing here writes to
``os.environ``.

=========================  =============================  =====================
field                      environment variable           default
=========================  =============================  =====================
``grading_dir``            ``COURSE_GRADING_DIR``         ``<repo>/_grading``
``db_url``                 ``COURSE_DB_URL``              SQLite in grading_dir
``exchange``               ``COURSE_EXCHANGE``            ``<grading>/exchange``
``source_dir``             ``COURSE_SOURCE_DIR``          ``solutions``
``release_dir``            ``COURSE_RELEASE_DIR``         ``exercises``
``cell_timeout``           ``COURSE_CELL_TIMEOUT``        60 s per cell
``submission_timeout``     ``COURSE_SUBMISSION_TIMEOUT``  900 s per submission
``workers``                ``COURSE_WORKERS``             1
``shard``                  ``COURSE_SHARD``               ``None`` (all), "i/N"
``roster``                 ``COURSE_ROSTER``              ``None``: the system's
                                                          users (``pwd``)
``a06_heldout``            ``COURSE_A06_HELDOUT``         ``None``: a06 graded
                                                          on public digits
                                                          (coursekit.heldout)
=========================  =============================  =====================
"""
from __future__ import annotations

import os
import sys
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COURSE_ID = "everything-is-a-mapping"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)`` (1-based shard i of N); ``None`` -> None."""
    if text in (None, ""):
        return None
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/N, e.g. 1/2")
    if not 1 <= i <= n:
        raise ValueError(f"--shard {text!r}: i must be between 1 and N")
    return i, n


def shard_of(student: str, n: int) -> int:
    """The shard (1..n) a student belongs to: a stable hash of the id, so
    every grading machine agrees without talking to the others."""
    return zlib.crc32(student.encode()) % n + 1


@dataclass(frozen=True)
class CourseConfig:
    repo: Path = REPO
    grading_dir: Path = REPO / "_grading"
    db_url: str = ""
    exchange: Path | None = None
    source_dir: str = "solutions"
    release_dir: str = "exercises"
    cell_timeout: int = 60
    submission_timeout: float = 900.0
    workers: int = 1
    shard: tuple[int, int] | None = None
    roster: Path | None = None
    a06_heldout: Path | None = None
    course_id: str = COURSE_ID
    extra_env: dict = field(default_factory=dict)

    def __post_init__(self):
        g = Path(self.grading_dir).resolve()
        object.__setattr__(self, "grading_dir", g)
        if not self.db_url:
            object.__setattr__(self, "db_url",
                               f"sqlite:///{g / 'gradebook.db'}")
        ex = Path(self.exchange).resolve() if self.exchange else \
            g / "exchange"
        object.__setattr__(self, "exchange", ex)
        if isinstance(self.shard, str):
            object.__setattr__(self, "shard", parse_shard(self.shard))
        if self.roster is not None:
            object.__setattr__(self, "roster", Path(self.roster).resolve())
        if self.a06_heldout not in (None, ""):
            object.__setattr__(self, "a06_heldout",
                               Path(self.a06_heldout).expanduser().resolve())
        else:
            object.__setattr__(self, "a06_heldout", None)

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "CourseConfig":
        """From ``COURSE_*`` variables; keyword arguments (the command
        line) win; ``None`` means "not given"."""
        env = os.environ if environ is None else environ
        vals = dict(
            grading_dir=env.get("COURSE_GRADING_DIR") or REPO / "_grading",
            db_url=env.get("COURSE_DB_URL", ""),
            exchange=env.get("COURSE_EXCHANGE") or None,
            source_dir=env.get("COURSE_SOURCE_DIR", "solutions"),
            release_dir=env.get("COURSE_RELEASE_DIR", "exercises"),
            cell_timeout=int(env.get("COURSE_CELL_TIMEOUT", "60")),
            submission_timeout=float(env.get("COURSE_SUBMISSION_TIMEOUT",
                                             "900")),
            workers=int(env.get("COURSE_WORKERS", "1")),
            shard=parse_shard(env.get("COURSE_SHARD")),
            roster=env.get("COURSE_ROSTER") or None,
            a06_heldout=env.get("COURSE_A06_HELDOUT") or None,
        )
        extra = {k: env[k] for k in ("COURSE_SANDBOX_MEMORY_MB",
                                     "COURSE_SANDBOX_CPU_SECONDS")
                 if env.get(k)}
        vals["extra_env"] = extra
        for k, v in overrides.items():
            if k not in vals and k not in cls.__dataclass_fields__:
                raise TypeError(f"CourseConfig has no field {k!r}")
            if v is not None:
                vals[k] = parse_shard(v) if k == "shard" and \
                    isinstance(v, str) else v
        if vals["exchange"] is None:
            vals.pop("exchange")
        return cls(**vals)

    def with_(self, **changes) -> "CourseConfig":
        return replace(self, **changes)

    # folders -----------------------------------------------------------
    def path(self, folder: str) -> Path:
        """``source``/``release`` (relative to the repository unless
        absolute) or ``submitted``/``autograded``/``feedback`` (in the
        grading folder)."""
        if folder == "source":
            return self.repo / self.source_dir
        if folder == "release":
            return self.repo / self.release_dir
        return self.grading_dir / folder

    def expected_notebooks(self, assignment: str) -> list[str]:
        return sorted(p.name for p in
                      (self.path("source") / assignment).glob("*.ipynb"))

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    def in_shard(self, student: str) -> bool:
        return self.shard is None or \
            shard_of(student, self.shard[1]) == self.shard[0]

    # subprocesses --------------------------------------------------------
    def env(self, base=None) -> dict:
        """Environment for an nbgrader process: this configuration as the
        ``COURSE_*`` variables nbgrader_config.py reads, the virtual
        environment's ``bin/`` first on PATH (nbgrader shells out to
        ``alembic`` and starts kernels by name)."""
        env = dict(os.environ if base is None else base)
        bindir = str(Path(sys.executable).parent)
        if not env.get("PATH", "").startswith(bindir + os.pathsep):
            env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env.update(
            COURSE_GRADING_DIR=str(self.grading_dir),
            COURSE_DB_URL=self.db_url,
            COURSE_EXCHANGE=str(self.exchange),
            COURSE_SOURCE_DIR=self.source_dir,
            COURSE_RELEASE_DIR=self.release_dir,
            COURSE_CELL_TIMEOUT=str(self.cell_timeout),
        )
        # The grader's own processes read the held-out file (the kernel's
        # environment is built from scratch: this never reaches it).
        env.pop("COURSE_A06_HELDOUT", None)
        if self.a06_heldout is not None:
            env["COURSE_A06_HELDOUT"] = str(self.a06_heldout)
        env.update(self.extra_env)
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        return env
