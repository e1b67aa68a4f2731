"""A file is replaced whole or not at all, and an error names the file, never the temporary."""

from __future__ import annotations

import errno
import os
import stat
import sys

import pytest

from niti_hw.atomic_write import atomic_write


def test_the_target_appears_whole_with_the_usual_permissions(tmp_path):
    target = tmp_path / "report.csv"
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp != target
        tmp.write_text("a,b\n")
        assert not target.exists()
    assert target.read_text() == "a,b\n"
    assert list(tmp_path.iterdir()) == [target]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_names_the_target_and_leaves_the_old_file(tmp_path):
    target = tmp_path / "report.csv"
    target.write_text("old\n")
    with pytest.raises(OSError) as caught:
        with atomic_write(target, f"--out {target}") as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    assert str(caught.value) == f"--out {target}: could not be written (No space left on device)"
    assert target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]


def test_any_other_error_passes_through_and_leaves_nothing(tmp_path):
    target = tmp_path / "plot.png"
    with pytest.raises(KeyError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise KeyError("drawing failed")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_takes_no_new_file_is_named(tmp_path):
    target = tmp_path / "missing" / "x.csv"
    with pytest.raises(OSError, match=rf"^{target}: no file can be made in its folder "
                                      rf"{target.parent} \(No such file or directory\)$"):
        with atomic_write(target):
            pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_the_issue_case_names_the_path_the_user_gave():
    """/proc takes no new files, whoever asks (root too)."""
    with pytest.raises(OSError) as caught:
        with atomic_write("/proc/x", "--out /proc/x") as tmp:
            tmp.write_text("never")
    assert str(caught.value).startswith("--out /proc/x: no file can be made in its folder /proc (")
    assert ".x." not in str(caught.value)
