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
