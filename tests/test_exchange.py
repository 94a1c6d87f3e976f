"""The file-system exchange, as a hostile class uses it.

Submissions are written straight into the exchange's ``inbound/`` folder,
owned by the students' own uids (the roster maps ids to uids), the way a
student who does not use ``nbgrader submit`` can: in a classmate's name,
back-dated (an old timestamp in the folder name, in ``timestamp.txt`` and
in the files' mtimes), with symlinks to the solutions, with a file planted
by someone else. ``coursekit.collect`` must refuse or neutralise each, and
never touch the named classmate's own submission.
"""
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from coursekit import collect, pipeline, release
from coursekit.config import CourseConfig

A = "a01_mapping"
COURSE = "everything-is-a-mapping"
UIDS = {"ana": 4101, "ben": 4102, "lea": 4103, "kim": 4104}
OLD = "2020-01-01 00:00:00.000000 UTC"


@pytest.fixture()
def ex(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making files owned by other users needs root (as in "
                    "CI)")
    roster = tmp_path / "roster.txt"
    roster.write_text("".join(f"{s} {u}\n" for s, u in UIDS.items()))
    cfg = CourseConfig.from_env(grading_dir=tmp_path / "grading",
                                exchange=tmp_path / "exchange",
                                roster=roster, db_url=None)
    (cfg.exchange / COURSE / "inbound").mkdir(parents=True)
    return cfg


def submit(cfg, folder_name, owner, files, stamp=None, mtime=None):
    """An inbound folder owned by uid ``owner``: files name -> bytes, or
    name -> Path for a symlink."""
    d = cfg.exchange / COURSE / "inbound" / folder_name
    d.mkdir()
    for name, data in files.items():
        p = d / name
        if isinstance(data, Path):
            p.symlink_to(data)
        else:
            p.write_bytes(data)
    (d / "timestamp.txt").write_text(stamp or datetime.now(timezone.utc)
                                     .strftime(collect.TIMESTAMP_FORMAT))
    for p in [d, *d.iterdir()]:
        os.lchown(p, owner, owner)
        if mtime and not p.is_symlink():
            os.utime(p, (mtime, mtime))
    return d


def nb(text: str) -> bytes:
    return ('{"cells": [], "metadata": {"who": "%s"}, "nbformat": 4, '
            '"nbformat_minor": 5}' % text).encode()


def name(student, ts="2026-01-01 10:00:00.000000 UTC", rand="x"):
    return f"{student}+{A}+{ts}+{rand}"


def submitted(cfg, student):
    return cfg.path("submitted") / student / A


def test_submission_in_a_classmates_name_is_refused(ex):
    submit(ex, name("ana", rand="a"), UIDS["ana"],
           {f"{A}.ipynb": nb("ana's own work")})
    time.sleep(0.05)
    # ben, later, as "ana" (nbgrader submit --student=ana)
    submit(ex, name("ana", ts="2026-01-02 10:00:00.000000 UTC", rand="b"),
           UIDS["ben"], {f"{A}.ipynb": nb("ben's stub")})
    res = collect.collect(ex, A)
    got = (submitted(ex, "ana") / f"{A}.ipynb").read_text()
    assert "ana's own work" in got and "ben" not in got
    (line,) = res.refused
    assert "student 'ana', assignment 'a01_mapping'" in line
    assert "uid 4102" in line and "refused" in line
    assert res.counts == {"ana": 1}


def test_unknown_student_is_refused(ex):
    submit(ex, name("zed"), 4999, {f"{A}.ipynb": nb("zed")})
    res = collect.collect(ex, A)
    assert not submitted(ex, "zed").exists()
    assert "no such student" in res.refused[0]


def test_back_dated_late_submission_is_late(ex):
    release.set_duedate(ex, A, datetime.now(timezone.utc)
                        .replace(tzinfo=None) - timedelta(hours=1))
    week_ago = time.time() - 7 * 86400
    submit(ex, name("lea", ts=OLD), UIDS["lea"],
           {f"{A}.ipynb": nb("late work")}, stamp=OLD, mtime=week_ago)
    res = collect.collect(ex, A)
    stamp = (submitted(ex, "lea") / "timestamp.txt").read_text()
    landed = datetime.strptime(stamp, collect.TIMESTAMP_FORMAT)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert abs((landed - now).total_seconds()) < 60, stamp
    assert any("lea" in ln and "after the due date" in ln for ln in res.late)
    assert any("timestamp.txt says '2020-01-01" in ln for ln in res.notes)


def test_before_duedate_uses_the_exchange_clock(ex):
    submit(ex, name("lea", ts="2026-01-01 10:00:00.000000 UTC", rand="1"),
           UIDS["lea"], {f"{A}.ipynb": nb("on time")})
    time.sleep(1.2)
    release.set_duedate(ex, A, datetime.now(timezone.utc)
                        .replace(tzinfo=None))
    time.sleep(1.2)
    # late, but named and stamped as if before the on-time one
    submit(ex, name("lea", ts="2025-01-01 10:00:00.000000 UTC", rand="2"),
           UIDS["lea"], {f"{A}.ipynb": nb("late")}, stamp=OLD)
    ontime = collect.collect(ex, A, before_duedate=True)
    assert "on time" in (submitted(ex, "lea") / f"{A}.ipynb").read_text()
    assert not ontime.late
    latest = collect.collect(ex, A)
    assert "late" in (submitted(ex, "lea") / f"{A}.ipynb").read_text()
    assert latest.late and latest.counts == {"lea": 2}


def test_symlinks_are_never_followed(ex):
    solution = pipeline.REPO / "solutions" / A / f"{A}.ipynb"
    submit(ex, name("kim"), UIDS["kim"], {
        f"{A}.ipynb": solution, "solutions": solution.parent,
        "notes.txt": b"mine"})
    # and an inbound entry that is itself a link to the solutions folder
    link = ex.exchange / COURSE / "inbound" / name("kim", rand="link")
    link.symlink_to(solution.parent)
    os.lchown(link, UIDS["kim"], UIDS["kim"])
    res = collect.collect(ex, A)
    folder = submitted(ex, "kim")
    assert sorted(p.name for p in folder.iterdir()) == \
        [".collected-from", "notes.txt", "timestamp.txt"]
    assert not any(p.is_symlink() for p in folder.rglob("*"))
    text = "\n".join(res.lines())
    assert f"'{A}.ipynb' is a symlink; not collected" in text
    assert "'solutions' is a symlink" in text
    assert "not a folder (a symlink?); refused" in text


def test_file_planted_by_another_user_is_not_collected(ex):
    d = submit(ex, name("ana"), UIDS["ana"], {f"{A}.ipynb": nb("ana")})
    planted = d / "extra.py"
    planted.write_text("print('ben was here')")
    os.chown(planted, UIDS["ben"], UIDS["ben"])
    res = collect.collect(ex, A)
    assert not (submitted(ex, "ana") / "extra.py").exists()
    assert (submitted(ex, "ana") / f"{A}.ipynb").exists()
    assert any("'extra.py' was written by uid 4102" in ln
               for ln in res.notes)


def test_recollecting_an_unchanged_submission_keeps_it(ex):
    submit(ex, name("ana"), UIDS["ana"], {f"{A}.ipynb": nb("ana")})
    first = collect.collect(ex, A)
    nb_path = submitted(ex, "ana") / f"{A}.ipynb"
    before = nb_path.stat().st_ino
    again = collect.collect(ex, A)
    assert list(first.collected) == ["ana"] and again.unchanged == ["ana"]
    assert nb_path.stat().st_ino == before
