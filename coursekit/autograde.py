"""The class run: autograde every submission of an assignment, and finish.

:func:`autograde` runs nbgrader's autograde for every student who
submitted, in ``cfg.workers`` supervised worker processes (each grades one
submission at a time in its own sandboxed kernels; more than one worker
needs a gradebook server such as PostgreSQL, SQLite allows one writer).
The run always finishes:

* before grading, each submission is checked: a missing notebook, a
  misnamed one (``A01_mapping (1).ipynb``) or invalid notebook JSON is
  reported by name and the notebook scored 0 in the gradebook (instead of
  "needs manual grading"); :mod:`coursekit.feedback` writes the student a
  note saying what was expected;
* a worker that dies (OOM kill, segfault) loses only the submission it was
  grading: a new worker takes over, the submission is retried once, and if
  it kills its worker again it is reported with the student and the
  assignment; the others are graded;
* a submission that takes longer than ``cfg.submission_timeout`` seconds
  of wall-clock time is stopped (its worker and kernels are killed) and
  reported;
* results are stored as they come: the gradebook by nbgrader after each
  submission, and this run's outcome per student in
  ``<grading>/autograde-<assignment>.state.json`` (written atomically after
  every submission). A rerun *resumes*: it grades only submissions that
  are new, changed (digest of the submitted files and of the source
  assignment) or did not succeed last time; ``resume=False`` regrades all;
* with ``cfg.shard = (i, N)`` only the students of shard i are graded
  (a stable hash of the student id), so N machines sharing one PostgreSQL
  gradebook grade a class between them (``--shard i/N``).

:func:`report` lists, per student, the score and every failed test cell
with its message: ``student 'ana', assignment 'a01', cell 'test_affine':
Feedback: ...``.
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import time
import warnings
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import wait
from pathlib import Path

import nbformat

from coursekit import judge, nbmeta, pipeline
from coursekit.config import CourseConfig

#: Test-only hooks (never set in production): a worker grading the named
#: student kills itself with SIGKILL, as the kernel's OOM killer would --
#: on every attempt (``..._KILL``) or only the first (``..._KILL_ONCE``).
TEST_KILL = "COURSEKIT_TEST_KILL_STUDENT"
TEST_KILL_ONCE = "COURSEKIT_TEST_KILL_ONCE_STUDENT"


@dataclass
class Problem:
    student: str
    assignment: str
    where: str
    message: str

    def __str__(self) -> str:
        return (f"student {self.student!r}, assignment {self.assignment!r},"
                f" {self.where}: {self.message}")


@dataclass
class Result:
    assignment: str
    graded: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # unchanged (resume)
    retried: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _cfg(grading_dir_or_cfg, db_url=None, **kw) -> CourseConfig:
    if isinstance(grading_dir_or_cfg, CourseConfig):
        cfg = grading_dir_or_cfg
        changes = {k: v for k, v in dict(db_url=db_url, **kw).items()
                   if v is not None}
        return cfg.with_(**changes) if changes else cfg
    return CourseConfig.from_env(grading_dir=grading_dir_or_cfg,
                                 db_url=db_url, **kw)


def grading_paths(grading_dir) -> dict:
    g = Path(grading_dir)
    return dict(submitted=g / "submitted", autograded=g / "autograded",
                feedback=g / "feedback")


def expected_notebooks(assignment: str, cfg: CourseConfig | None = None):
    return (cfg or CourseConfig.from_env()).expected_notebooks(assignment)


def check_submission(folder: Path, student: str, assignment: str,
                     cfg: CourseConfig | None = None) -> list[Problem]:
    """Problems with one student's submitted folder (empty list if OK)."""
    problems = []
    expected = expected_notebooks(assignment, cfg)
    present = sorted(p.name for p in folder.glob("*.ipynb"))
    for name in expected:
        path = folder / name
        if not path.exists():
            others = [p for p in present if p not in expected]
            hint = (f"; found {', '.join(repr(o) for o in others)}: rename "
                    f"it to {name!r} and resubmit" if others else "")
            problems.append(Problem(student, assignment, f"file {name!r}",
                                    f"missing notebook{hint}; scored 0"))
            continue
        try:
            nb = nbformat.read(str(path), as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0][:200]
            problems.append(Problem(
                student, assignment, f"file {name!r}",
                f"not a valid notebook ({type(exc).__name__}: {first}); "
                f"scored 0"))
    return problems


def strip_links(folder: Path, student: str, assignment: str) -> list[Problem]:
    """Remove symbolic links and special files from a submitted folder.

    nbgrader copies a submission's other files with ``shutil.copy``, as
    the grader, following links: a link to the solutions or to
    ``/proc/self/environ`` would arrive as a regular file in the folder
    the student's kernel gets. Links, FIFOs, sockets and devices are not
    part of anyone's work: each is removed and reported by name, and the
    rest of the submission is graded.
    """
    import stat
    problems = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode)
                                          or stat.S_ISDIR(mode)):
                kind = ("a symbolic link" if stat.S_ISLNK(mode)
                        else "a special file")
                try:
                    path.unlink()
                except OSError:
                    pass
                rel = path.relative_to(folder)
                problems.append(Problem(
                    student, assignment, f"file {str(rel)!r}",
                    f"{kind}, not part of a submission: removed before "
                    f"grading (the rest was graded)"))
    return problems


def submissions(grading_dir, assignment: str, only=None) -> list[str]:
    root = grading_paths(grading_dir)["submitted"]
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if (p / assignment).is_dir()
                  and (not only or p.name in only))


def quiet_sqlalchemy() -> None:
    """nbgrader 0.9's gradebook triggers SQLAlchemy's harmless "Object of
    type <SubmittedAssignment> not in session" autoflush warning on every
    submission; it says nothing about the grades."""
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning,
                            message=r"Object of type .* not in session")


def _alembic_head() -> str:
    """The gradebook schema's alembic head, read in this process."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini
    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
        return ScriptDirectory.from_config(Config(ini)).get_current_head()


def _fast_gradebook() -> None:
    """nbgrader runs ``alembic heads`` (a new Python process, ~0.5 s, found
    on PATH) each time a Gradebook is opened, several times per
    submission; the answer cannot change while we grade, so it is read
    once per process, in-process (nothing needs to be put on PATH)."""
    import functools

    import nbgrader.api as napi
    if not hasattr(napi.get_alembic_version, "cache_info"):
        napi.get_alembic_version = functools.lru_cache(maxsize=1)(
            _alembic_head)


def _gradebook(cfg: CourseConfig):
    """A Gradebook on cfg.db_url."""
    from nbgrader.api import Gradebook
    quiet_sqlalchemy()
    _fast_gradebook()
    if cfg.is_sqlite:
        cfg.grading_dir.mkdir(parents=True, exist_ok=True)
    return Gradebook(cfg.db_url)


def _api(cfg: CourseConfig):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader
    config = PyFileConfigLoader("nbgrader_config.py",
                                path=str(cfg.repo)).load_config()
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


# ---- the worker process ---------------------------------------------------

def _grade_one(api, assignment: str, student: str, cfg) -> dict:
    if os.environ.get(TEST_KILL) == student:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(TEST_KILL_ONCE) == student:
        marker = cfg.grading_dir / f".test-killed-{student}"
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
    try:
        res = api.autograde(assignment, student, force=True, create=True)
    except Exception as exc:  # noqa: BLE001
        res = dict(success=False, error=f"{type(exc).__name__}: {exc}",
                   log="")
    return dict(success=bool(res.get("success")),
                error=str(res.get("error") or "")[-2000:],
                log=str(res.get("log") or "")[-4000:])


def _warm_up() -> None:
    """A worker grades many submissions: import once, at its start, what
    the trusted checks use (torch, and torch.optim's lazily imported
    compiler stack, several seconds), so no submission pays for it."""
    try:
        import torch
        import torch.optim  # noqa: F401
        p = torch.zeros(1, requires_grad=True)
        p.grad = torch.zeros(1)
        torch.optim.SGD([p], lr=0.1).step()    # imports torch._dynamo
    except Exception:  # noqa: BLE001 (grading works without the warm-up)
        pass


def _worker_main(conn, cfg: CourseConfig) -> None:
    """A grading worker: its own session (so the pool can kill it and its
    kernels together), the course's environment, one task at a time."""
    try:
        os.setsid()
    except OSError:
        pass
    env = cfg.env()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cfg.repo)
    quiet_sqlalchemy()
    _fast_gradebook()
    api = _api(cfg)
    _warm_up()
    # What was imported stays for the worker's life: out of the garbage
    # collector's full passes (with torch loaded, each took about 0.2 s,
    # every few submissions).
    gc.freeze()
    conn.send(("ready", None))
    while True:
        task = conn.recv()
        if task is None:
            return
        assignment, student = task
        conn.send(("done", _grade_one(api, assignment, student, cfg)))


class _Worker:
    def __init__(self, ctx, cfg):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, cfg),
                                daemon=True)
        self.proc.start()
        child.close()
        self.task = None        # (student, attempt, deadline)
        self.ready = False

    def kill(self) -> None:
        try:
            import psutil
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                try:
                    p.kill()
                except psutil.Error:
                    pass
        except Exception:  # noqa: BLE001 (already gone)
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.kill()
        self.proc.join(10)
        self.conn.close()


def _run_pool(cfg, assignment, students, log, on_result) -> list[str]:
    """Grade ``students`` in supervised workers; call ``on_result(student,
    outcome)`` as each finishes. Returns the students that were retried
    because their worker died."""
    ctx = get_context("spawn")
    queue = [(s, 1) for s in students]
    retried: list[str] = []
    workers = [_Worker(ctx, cfg)
               for _ in range(max(1, min(cfg.workers, len(students))))]

    def assign(w):
        w.task = None
        if queue:
            s, attempt = queue.pop(0)
            w.task = (s, attempt, time.monotonic() + cfg.submission_timeout)
            w.conn.send((assignment, s))

    try:
        while queue or any(w.task for w in workers):
            now = time.monotonic()
            deadlines = [w.task[2] for w in workers if w.task]
            timeout = max(0.05, min(deadlines) - now) if deadlines else 5.0
            ready = wait([w.conn for w in workers]
                         + [w.proc.sentinel for w in workers], timeout)
            for i, w in enumerate(list(workers)):
                if w.conn in ready:
                    try:
                        kind, out = w.conn.recv()
                    except (EOFError, OSError):
                        pass            # it died: handled below
                    else:
                        if kind == "ready":
                            w.ready = True
                        else:
                            on_result(w.task[0], out)
                        assign(w)
                        continue
                if not w.proc.is_alive():
                    task, code = w.task, w.proc.exitcode
                    w.kill()
                    if not w.ready:
                        raise RuntimeError(
                            f"a grading worker died while starting (exit "
                            f"code {code}); nothing was graded by it")
                    workers[i] = _Worker(ctx, cfg)
                    if task is None:
                        continue
                    s, attempt = task[:2]
                    why = (f"signal {-code}" if code and code < 0
                           else f"exit code {code}")
                    if attempt == 1:
                        log(f"student {s!r}, assignment {assignment!r}: "
                            f"the grading worker died ({why}); retrying "
                            f"once")
                        retried.append(s)
                        queue.insert(0, (s, 2))
                    else:
                        on_result(s, dict(
                            success=False, log="", error="",
                            pool=f"the grading worker died twice ({why}) "
                                  f"while grading this submission (out of "
                                  f"memory, or a crash in native code); "
                                  f"not graded"))
                elif w.task and time.monotonic() > w.task[2]:
                    s = w.task[0]
                    w.kill()
                    workers[i] = _Worker(ctx, cfg)
                    on_result(s, dict(
                        success=False, log="", error="",
                        pool=f"stopped after the wall-clock limit of "
                              f"{cfg.submission_timeout:g} s per "
                              f"submission; not graded"))
    finally:
        for w in workers:
            if w.proc.is_alive() and w.task is None:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
                w.proc.join(10)
            if w.proc.is_alive():
                w.kill()
    return retried


# ---- the class run --------------------------------------------------------

def _zero(cfg, assignment: str, student: str, notebook: str):
    from nbgrader.api import MissingEntry
    with _gradebook(cfg) as gb:
        try:
            nb = gb.find_submission_notebook(notebook, assignment, student)
        except MissingEntry:
            gb.update_or_create_submission(assignment, student)
            nb = gb.find_submission_notebook(notebook, assignment, student)
        for grade in nb.grades:
            grade.auto_score = 0
            grade.manual_score = None
            grade.needs_manual_grade = False
        gb.db.commit()


def db_url_for(grading_dir, db_url=None) -> str:
    return db_url or os.environ.get("COURSE_DB_URL") or \
        f"sqlite:///{Path(grading_dir) / 'gradebook.db'}"


def ensure_assignment(assignment: str, grading_dir, db_url=None,
                      cfg: CourseConfig | None = None) -> None:
    """The gradebook knows the assignment (else register it)."""
    from nbgrader.api import MissingEntry
    cfg = cfg or _cfg(grading_dir, db_url)
    for attempt in range(3):
        try:
            with _gradebook(cfg) as gb:
                gb.find_assignment(assignment)
                return
        except MissingEntry:
            pass
        try:
            pipeline.generate_release(assignment, cfg.grading_dir,
                                      cfg.grading_dir / "release", cfg=cfg)
            return
        except pipeline.NbgraderError:
            # another grading machine registered it at the same moment
            if attempt == 2:
                raise
            time.sleep(1 + attempt)


def preflight(assignment: str, cfg: CourseConfig, log=print) -> str:
    """The checks' ``preflight(environ)``, once per class run, before any
    submission (a06: the held-out digits, checked; a bad file stops the
    run here with its error). Its log lines are printed; its ``key`` (what
    the grades depend on besides the submission) is returned ("" when the
    checks have none)."""
    checks = judge.load(assignment)
    fn = getattr(checks, "preflight", None)
    if fn is None:
        return ""
    out = fn(cfg.env())
    for line in out.get("lines", []):
        log(line)
    return str(out.get("key", ""))


def digest(folder: Path, cfg: CourseConfig, assignment: str,
           data_key: str = "") -> str:
    """Hash of the submitted files, of the source assignment and of the
    data the checks grade on (``data_key``, from the checks'
    ``preflight``): a resumed run regrades a submission when any changed."""
    h = hashlib.sha256(data_key.encode() + b"\0" if data_key else b"")
    for base in (folder, cfg.path("source") / assignment):
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.is_symlink():
                h.update(str(p.relative_to(base)).encode() + b"\0")
                h.update(p.read_bytes())
        h.update(b"\1")
    return h.hexdigest()


def state_path(cfg: CourseConfig, assignment: str) -> Path:
    """Per assignment and shard: shards may share one grading folder."""
    shard = f"-shard{cfg.shard[0]}of{cfg.shard[1]}" if cfg.shard else ""
    return cfg.grading_dir / f"autograde-{assignment}{shard}.state.json"


def _load_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_state(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)


def autograde(assignment: str, grading_dir=None, db_url: str | None = None,
              workers: int | None = None, only=None, log=print, *,
              cfg: CourseConfig | None = None, resume: bool = True,
              shard=None) -> Result:
    """Grade every submission of ``assignment``; never stop on one.

    ``autograde(a, cfg)`` or, as before, ``autograde(a, grading_dir,
    db_url, workers=N)``; ``only``: these students; ``resume=False``:
    regrade even unchanged submissions.
    """
    t0 = time.perf_counter()
    cfg = _cfg(cfg or grading_dir, db_url, workers=workers, shard=shard)
    if cfg.workers > 1 and cfg.is_sqlite:
        raise ValueError("parallel grading needs a gradebook server "
                         "(PostgreSQL): SQLite allows one writer; pass "
                         "--db-url postgresql://... or --workers 1")
    data_key = preflight(assignment, cfg, log)
    if data_key:
        cfg = cfg.with_(extra_env={**cfg.extra_env,
                                   "COURSEKIT_PREFLIGHT": assignment})
    ensure_assignment(assignment, cfg.grading_dir, cfg=cfg)
    result = Result(assignment)
    students = [s for s in submissions(cfg.grading_dir, assignment, only)
                if cfg.in_shard(s)]
    sub_root = cfg.path("submitted")
    spath = state_path(cfg, assignment)
    state = _load_state(spath) if resume else {}
    with _gradebook(cfg) as gb:
        in_gradebook = {s.student_id for s in
                        gb.assignment_submissions(assignment)}
        for s in students:   # create students before workers race
            gb.update_or_create_student(s)
    digests = {s: digest(sub_root / s / assignment, cfg, assignment,
                         data_key) for s in students}
    bad: dict[str, list[Problem]] = {}
    todo = []
    for s in students:
        old = state.get(s, {})
        if (resume and old.get("digest") == digests[s]
                and old.get("status") in ("graded", "checked")
                and s in in_gradebook):
            result.skipped.append(s)
            result.problems += [Problem(**p) for p in old.get("problems",
                                                              [])]
            continue
        links = strip_links(sub_root / s / assignment, s, assignment)
        if links:
            result.problems += links
            for p in links:
                log(f"PROBLEM {p}")
        probs = check_submission(sub_root / s / assignment, s, assignment,
                                 cfg)
        if probs:
            bad[s] = probs
        else:
            todo.append(s)

    def store(s, status, problems):
        state[s] = dict(digest=digests[s], status=status,
                        problems=[dict(vars(p)) for p in problems],
                        when=time.time())
        _save_state(spath, state)

    # A submission with a missing or broken notebook is not executed:
    # its problem is reported and the notebook scored 0.
    for s, probs in bad.items():
        for p in probs:
            _zero(cfg, assignment, s, Path(p.where.split("'")[1]).stem)
        result.problems += probs
        store(s, "checked", probs)

    def on_result(s, out):
        if out["success"]:
            result.graded.append(s)
            store(s, "graded", [])
        else:
            msg = out.get("pool") or "nbgrader failed: " + (
                out["error"] or out["log"][-500:]).strip()
            p = Problem(s, assignment, "autograde", msg)
            result.problems.append(p)
            store(s, "failed", [p])
            log(f"PROBLEM {p}")

    if todo:
        result.retried = _run_pool(cfg, assignment, todo, log, on_result)
    result.graded.sort()
    for s, probs in bad.items():
        for p in probs:
            log(f"PROBLEM {p}")
    result.seconds = time.perf_counter() - t0
    return result


def cell_errors(nb_path) -> dict[str, str]:
    """grade_id -> 'ename: evalue' for every test cell that failed."""
    nb = nbformat.read(str(nb_path), as_version=4)
    out = {}
    for i, cell in enumerate(nb.cells):
        if not nbmeta.meta(cell).get("grade") or cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out[nbmeta.grade_id(cell) or f"cell {i}"] = \
                    f"{o.get('ename')}: {o.get('evalue')}"
    return out


def report(assignment: str, grading_dir, db_url=None) -> list[str]:
    """One line per student (score) and per failed test cell."""
    cfg = _cfg(grading_dir, db_url)
    scores = pipeline.scores(cfg.db_url, assignment)
    lines = []
    auto = cfg.path("autograded")
    for s in sorted(scores):
        sc = scores[s]
        lines.append(f"student {s!r}, assignment {assignment!r}: "
                     f"{sc['total']:g} points")
        folder = auto / s / assignment
        for nb in sorted(folder.glob("*.ipynb")):
            for cell, err in cell_errors(nb).items():
                lines.append(f"  student {s!r}, assignment {assignment!r},"
                             f" cell {cell!r}: {err[:300]}")
    return lines


def save_json(result: Result, path) -> None:
    Path(path).write_text(json.dumps(dict(
        assignment=result.assignment, graded=result.graded,
        skipped=result.skipped, retried=result.retried,
        problems=[dict(vars(p)) for p in result.problems],
        seconds=result.seconds), indent=1))
