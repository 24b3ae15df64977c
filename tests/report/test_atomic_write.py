import os

from resdiag.results import atomic_write


def test_symlink_is_written_through(tmp_path):
    target = tmp_path / "real" / "out.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert not list(target.parent.glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_plain_file_is_replaced_whole(tmp_path):
    f = tmp_path / "out.json"
    f.write_text("x" * 100)
    atomic_write(f, "short")
    assert f.read_text() == "short"
