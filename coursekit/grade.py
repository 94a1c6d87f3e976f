"""Autograde a whole class: checked submissions, parallel workers, report.

:func:`autograde` runs nbgrader's autograde for every student who
submitted an assignment, sequentially or in ``workers`` processes (each
with its own sandboxed kernels; parallel workers need a gradebook server
such as PostgreSQL, SQLite allows one writer). One bad submission never
stops the run:

* before grading, each submission is checked: a missing notebook, a
  misnamed one (``A01_mapping (1).ipynb``) or invalid notebook JSON is
  reported by name, and the notebook gets zero points in the gradebook
  (as nbgrader does for a missing file) instead of "needs manual grading";
* an nbgrader failure for one student is reported with the student and
  assignment, and the others are graded;
* :func:`report` lists, per student, the score and every failed test cell
  with its message: ``student 'ana', assignment 'a01', cell 'test_affine':
  Feedback: ...``.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import nbformat

from coursekit import pipeline


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
    seconds: float = 0.0


def grading_paths(grading_dir) -> dict:
    g = Path(grading_dir)
    return dict(submitted=g / "submitted", autograded=g / "autograded",
                feedback=g / "feedback")


def expected_notebooks(assignment: str) -> list[str]:
    src = pipeline.REPO / os.environ.get("COURSE_SOURCE_DIR",
                                         "solutions") / assignment
    return sorted(p.name for p in src.glob("*.ipynb"))


def check_submission(folder: Path, student: str, assignment: str):
    """Problems with one student's submitted folder (empty list if OK)."""
    problems = []
    present = sorted(p.name for p in folder.glob("*.ipynb"))
    for name in expected_notebooks(assignment):
        path = folder / name
        if not path.exists():
            others = [p for p in present
                      if p not in expected_notebooks(assignment)]
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


def submissions(grading_dir, assignment: str, only=None) -> list[str]:
    root = grading_paths(grading_dir)["submitted"]
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if (p / assignment).is_dir()
                  and (not only or p.name in only))


def _fast_gradebook() -> None:
    """nbgrader runs ``alembic heads`` (a new Python process, ~0.5 s) each
    time a Gradebook is opened, several times per submission; the answer
    cannot change while we grade, so ask once per process."""
    import functools

    import nbgrader.api as napi
    if not hasattr(napi.get_alembic_version, "cache_info"):
        napi.get_alembic_version = functools.lru_cache(maxsize=1)(
            napi.get_alembic_version)


def _prepare_env(grading_dir, url) -> None:
    # nbgrader's gradebook shells out to alembic, from this environment
    os.environ["PATH"] = pipeline.course_env(grading_dir, url)["PATH"]
    _fast_gradebook()


def _api(grading_dir, db_url):
    os.environ["COURSE_GRADING_DIR"] = str(grading_dir)
    if db_url:
        os.environ["COURSE_DB_URL"] = db_url
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader
    config = PyFileConfigLoader("nbgrader_config.py",
                                path=str(pipeline.REPO)).load_config()
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


_WORKER_API = None


def _worker_init(grading_dir, db_url, env):
    global _WORKER_API
    os.environ.update(env)
    os.chdir(pipeline.REPO)
    _fast_gradebook()
    _WORKER_API = _api(grading_dir, db_url)


def _grade_one(assignment: str, student: str) -> tuple[str, dict]:
    try:
        res = _WORKER_API.autograde(assignment, student, force=True,
                                    create=True)
    except Exception as exc:  # noqa: BLE001
        res = dict(success=False, error=f"{type(exc).__name__}: {exc}",
                   log="")
    return student, dict(success=bool(res.get("success")),
                         error=str(res.get("error") or "")[-2000:],
                         log=str(res.get("log") or "")[-4000:])


def _zero(db_url: str, assignment: str, student: str, notebook: str):
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(db_url) as gb:
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


def ensure_assignment(assignment: str, grading_dir, db_url=None) -> None:
    """The gradebook knows the assignment (else register it)."""
    from nbgrader.api import Gradebook, MissingEntry
    url = db_url_for(grading_dir, db_url)
    _prepare_env(grading_dir, url)
    try:
        with Gradebook(url) as gb:
            gb.find_assignment(assignment)
            return
    except MissingEntry:
        pass
    pipeline.generate_release(assignment, grading_dir,
                              Path(grading_dir) / "release", db_url=url)


def autograde(assignment: str, grading_dir, db_url: str | None = None,
              workers: int = 1, only=None, log=print) -> Result:
    """Grade every submission of ``assignment``; never stop on one."""
    import time
    from nbgrader.api import Gradebook
    t0 = time.perf_counter()
    url = db_url_for(grading_dir, db_url)
    _prepare_env(grading_dir, url)
    if workers > 1 and url.startswith("sqlite"):
        raise ValueError("parallel grading needs a gradebook server "
                         "(PostgreSQL): SQLite allows one writer; pass "
                         "--db-url postgresql://... or --workers 1")
    ensure_assignment(assignment, grading_dir, url)
    result = Result(assignment)
    students = submissions(grading_dir, assignment, only)
    sub_root = grading_paths(grading_dir)["submitted"]
    bad: dict[str, list[Problem]] = {}
    for s in students:
        probs = check_submission(sub_root / s / assignment, s, assignment)
        if probs:
            bad[s] = probs
            result.problems += probs
    with Gradebook(url) as gb:   # create students before workers race
        for s in students:
            gb.update_or_create_student(s)
    env = pipeline.course_env(grading_dir, url)
    # A submission with a missing or broken notebook is not executed:
    # its problem is reported and the notebook scored 0 below.
    todo = [s for s in students if s not in bad]
    outcomes: dict[str, dict] = {}
    if workers <= 1:
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        try:
            _worker_init(grading_dir, url, env)
            for s in todo:
                outcomes[s] = _grade_one(assignment, s)[1]
        finally:   # grading in-process must not leak its gradebook URL
            os.environ.clear()
            os.environ.update(saved_env)
            os.chdir(saved_cwd)
    else:
        ctx = get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx,
                                 initializer=_worker_init,
                                 initargs=(str(grading_dir), url,
                                           env)) as pool:
            futs = [pool.submit(_grade_one, assignment, s) for s in todo]
            for f in futs:
                s, out = f.result()
                outcomes[s] = out
    for s in students:
        out = outcomes.get(s)
        if s in bad or (out and not out["success"]):
            for p in bad.get(s, []):
                nb_name = p.where.split("'")[1]
                _zero(url, assignment, s, Path(nb_name).stem)
            if s not in bad:
                result.problems.append(Problem(
                    s, assignment, "autograde",
                    "nbgrader failed: " + (out["error"] or
                                           out["log"][-500:]).strip()))
        else:
            result.graded.append(s)
    for p in result.problems:
        log(f"PROBLEM {p}")
    result.seconds = time.perf_counter() - t0
    return result


def cell_errors(nb_path) -> dict[str, str]:
    """grade_id -> 'ename: evalue' for every test cell that failed."""
    nb = nbformat.read(str(nb_path), as_version=4)
    out = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out[meta.get("grade_id", f"cell {i}")] = \
                    f"{o.get('ename')}: {o.get('evalue')}"
    return out


def report(assignment: str, grading_dir, db_url=None) -> list[str]:
    """One line per student (score) and per failed test cell."""
    url = db_url_for(grading_dir, db_url)
    scores = pipeline.scores(url, assignment)
    lines = []
    auto = grading_paths(grading_dir)["autograded"]
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
        problems=[dict(vars(p)) for p in result.problems],
        seconds=result.seconds), indent=1))
