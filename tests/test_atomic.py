import pytest

from zeroseg3d.utils.atomic import atomic_open, atomic_write_text


def test_interrupted_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out" / "result.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["result.txt"]  # no temp file left
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_leftovers_of_a_killed_writer_go_and_outputs_follow_the_umask(tmp_path):
    import os
    import stat
    import subprocess
    import sys

    target = tmp_path / "result.txt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    leftover = tmp_path / f".result.txt.{dead}.abc123.tmp"
    leftover.write_text("half")
    live = tmp_path / f".result.txt.{os.getpid()}.def456.tmp"   # a writer still at work
    live.write_text("busy")
    atomic_write_text(target, "new")
    assert not leftover.exists() and live.exists()
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask != 0o600   # mkstemp's own are 0600
