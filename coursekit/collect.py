"""Collect submissions from nbgrader's file-system exchange, trusting
nothing the student wrote.

nbgrader's own ``collect`` believes the submission folder's name
(``<student>+<assignment>+<timestamp>+<random>``, chosen by the student's
``nbgrader submit --student=...``), takes lateness from the student's
``timestamp.txt``, only *warns* when the folder is owned by someone else,
and copies symlinks by following them (as root: a link to ``solutions/``
would be collected). :func:`collect` instead:

* **refuses** a submission whose folder (or any file in it) is not owned
  by the Unix user of the student it names: the roster file
  (``cfg.roster``: ``student_id user-or-uid`` per line) or, without one,
  the system's user of that name (``pwd``);
* copies regular files only, opened with ``O_NOFOLLOW``; a symlink,
  device or FIFO is not collected and is reported;
* takes the submission time from the exchange's own clock: the latest
  inode change time (``st_ctime``, set by the kernel, which no
  unprivileged ``touch`` can back-date) of the folder and everything in
  it. That time picks the latest submission, decides ``--before-duedate``
  and lateness, and is written to ``timestamp.txt`` for nbgrader's
  gradebook (the student's own ``timestamp.txt`` is replaced and a
  disagreement reported).

Every refusal or oddity is a line naming the student and the assignment;
a refused submission never touches the named student's collected work.
"""
from __future__ import annotations

import os
import pwd
import shutil
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from coursekit.config import CourseConfig

MAX_FILE_BYTES = 100 * 2**20
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"


@dataclass
class Entry:
    name: str
    student: str
    path: Path
    landed: datetime          # exchange clock, UTC, naive
    claimed: str = ""         # the student's timestamp.txt
    uid: int | None = None


@dataclass
class Collected:
    assignment: str
    collected: dict = field(default_factory=dict)   # student -> Entry
    unchanged: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)      # student -> n accepted
    refused: list = field(default_factory=list)     # lines
    notes: list = field(default_factory=list)       # lines
    late: list = field(default_factory=list)        # lines

    def lines(self) -> list[str]:
        return self.refused + self.notes + self.late


def read_roster(path) -> dict[str, int]:
    """``student_id user-or-uid`` per line (``#`` comments) -> uid."""
    out = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise ValueError(f"roster {path}, line {n}: expected "
                             f"'student_id user-or-uid', got {line!r}")
        sid, who = parts
        out[sid] = int(who) if who.isdigit() else pwd.getpwnam(who).pw_uid
    return out


def uid_lookup(cfg: CourseConfig):
    """student id -> uid (None: unknown student)."""
    if cfg.roster:
        roster = read_roster(cfg.roster)
        return roster.get

    def by_name(student):
        try:
            return pwd.getpwnam(student).pw_uid
        except KeyError:
            return None
    return by_name


def _who(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)


def _walk(root: Path):
    """(path, lstat) of root and everything under it, never following a
    symlink."""
    st = os.lstat(root)
    yield root, st
    if stat.S_ISDIR(st.st_mode):
        with os.scandir(root) as it:
            for e in sorted(it, key=lambda e: e.name):
                yield from _walk(Path(e.path))


def inbound_entries(cfg: CourseConfig, assignment: str, uid_of,
                    result: Collected) -> list[Entry]:
    """The exchange's submissions of ``assignment`` that are what they
    claim; the others are refused (a line in ``result.refused``)."""
    inbound = cfg.exchange / cfg.course_id / "inbound"
    if not inbound.is_dir():
        raise ValueError(f"no exchange inbound folder {inbound}: release "
                         f"the assignment to the exchange first")
    entries = []
    for d in sorted(os.scandir(inbound), key=lambda e: e.name):
        parts = d.name.rsplit("+", 3)
        if len(parts) < 3 or parts[1] != assignment:
            continue
        student = parts[0]
        where = f"student {student!r}, assignment {assignment!r}"
        st = os.lstat(d.path)
        if not stat.S_ISDIR(st.st_mode):
            result.refused.append(f"{where}: inbound entry {d.name!r} is "
                                  f"not a folder (a symlink?); refused")
            continue
        want = uid_of(student)
        if want is None:
            result.refused.append(
                f"{where}: no such student on this system or in the roster;"
                f" submission {d.name!r} (owned by {_who(st.st_uid)}) "
                f"refused")
            continue
        if st.st_uid != want:
            result.refused.append(
                f"{where}: submission {d.name!r} is owned by "
                f"{_who(st.st_uid)}, not by the student it names "
                f"(submitted in a classmate's name?); refused, "
                f"{student!r}'s own submissions are untouched")
            continue
        landed = max(s.st_ctime for _, s in _walk(Path(d.path))
                     if s.st_uid == want)
        claimed = ""
        ts = Path(d.path) / "timestamp.txt"
        if ts.is_file() and not ts.is_symlink():
            claimed = ts.read_text(errors="replace").strip()[:100]
        entries.append(Entry(d.name, student, Path(d.path), _utc(landed),
                             claimed, want))
    return entries


def copy_submission(src: Path, dest: Path, where: str,
                    owner: int | None = None) -> list[str]:
    """Copy regular files and folders owned by ``owner``, never following
    a symlink; return a line per file not copied."""
    notes = []
    dest.mkdir(parents=True)
    for path, st in _walk(src):
        rel = path.relative_to(src)
        if path == src:
            continue
        target = dest / rel
        if owner is not None and st.st_uid != owner:
            notes.append(f"{where}: {str(rel)!r} was written by "
                         f"{_who(st.st_uid)}, not by the student; not "
                         f"collected")
            continue
        if stat.S_ISDIR(st.st_mode):
            target.mkdir()
        elif stat.S_ISREG(st.st_mode):
            if st.st_size > MAX_FILE_BYTES:
                notes.append(f"{where}: {str(rel)!r} is larger than "
                             f"{MAX_FILE_BYTES >> 20} MB; not collected")
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fin, open(target, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        else:
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else \
                "not a regular file"
            notes.append(f"{where}: {str(rel)!r} is {kind}; not collected")
    return notes


def _duedate(cfg: CourseConfig, assignment: str):
    from coursekit.autograde import _gradebook
    from nbgrader.api import MissingEntry
    if cfg.is_sqlite and not Path(cfg.db_url.split("///", 1)[1]).exists():
        return None      # no gradebook yet: no due date
    try:
        with _gradebook(cfg) as gb:
            return gb.find_assignment(assignment).duedate
    except MissingEntry:
        return None


def collect(cfg: CourseConfig, assignment: str, before_duedate=False,
            uid_of=None) -> Collected:
    """Collect the latest (or latest on-time) accepted submission of every
    student into ``<grading>/submitted/<student>/<assignment>/``."""
    uid_of = uid_of or uid_lookup(cfg)
    result = Collected(assignment)
    entries = inbound_entries(cfg, assignment, uid_of, result)
    due = _duedate(cfg, assignment)
    by_student: dict[str, list[Entry]] = {}
    for e in entries:
        by_student.setdefault(e.student, []).append(e)
    for student, es in sorted(by_student.items()):
        es.sort(key=lambda e: e.landed)
        result.counts[student] = len(es)
        choice = es[-1]
        if before_duedate and due is not None:
            on_time = [e for e in es if e.landed <= due]
            choice = on_time[-1] if on_time else es[-1]
        where = f"student {student!r}, assignment {assignment!r}"
        dest = cfg.path("submitted") / student / assignment
        stamp = choice.landed.strftime(TIMESTAMP_FORMAT)
        marker = dest / ".collected-from"
        if marker.is_file() and marker.read_text() == choice.name + "\n" \
                and (dest / "timestamp.txt").read_text() == stamp:
            result.unchanged.append(student)
        else:
            tmp = dest.with_name(f".{assignment}.collecting")
            shutil.rmtree(tmp, ignore_errors=True)
            result.notes += copy_submission(choice.path, tmp, where,
                                            choice.uid)
            (tmp / "timestamp.txt").write_text(stamp)
            marker_tmp = tmp / ".collected-from"
            marker_tmp.write_text(choice.name + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
            result.collected[student] = choice
        if choice.claimed:
            try:
                from nbgrader.utils import parse_utc
                said = parse_utc(choice.claimed).replace(tzinfo=None)
            except Exception:  # noqa: BLE001
                said = None
            if said is None or abs((said - choice.landed)
                                   .total_seconds()) > 120:
                result.notes.append(
                    f"{where}: timestamp.txt says {choice.claimed!r} but "
                    f"the submission reached the exchange at {stamp}; "
                    f"the exchange's time is used")
        if due is not None and choice.landed > due:
            late = (choice.landed - due).total_seconds()
            result.late.append(
                f"{where}: submitted {late:.0f} s after the due date "
                f"(late; nbgrader's late-penalty policy applies)")
    return result
