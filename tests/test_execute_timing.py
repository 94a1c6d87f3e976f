"""COURSEKIT_TIMING: where an assignment's grading time goes."""
from coursekit import execute


def test_timing_lines_only_when_asked(tmp_path, monkeypatch):
    out = tmp_path / "timing.tsv"
    monkeypatch.delenv("COURSEKIT_TIMING", raising=False)
    execute._timing("cell", "setup", 0.5)
    assert not out.exists()
    monkeypatch.setenv("COURSEKIT_TIMING", str(out))
    execute._timing("cell", "setup", 0.5)
    execute._timing("check", "test_x", 0.01234)
    assert out.read_text().splitlines() == ["cell\tsetup\t0.5000",
                                            "check\ttest_x\t0.0123"]
