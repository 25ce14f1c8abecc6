"""nutrack._cli: user errors become one line and exit code 2; bugs keep their traceback."""
from __future__ import annotations

import errno
import os

import pytest

from nutrack._cli import UserError, check_writable_dir, check_writable_file, run_main


def _run(capsys, error):
    def main(argv):
        raise error

    rc = run_main("prog", main, [])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("error, message", [
    (UserError("bad   thing"), "prog: error: bad thing"),
    (UserError("two\nlines"), "prog: error: two lines"),
    (OSError(errno.ENOSPC, "No space left on device", "/x/out.json"), "prog: error: no space left on the device writing /x/out.json"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "prog: error: disk quota exceeded"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/f"), "prog: error: read-only file system writing /ro/f"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/f"), "prog: error: [Errno 13] Permission denied: '/root/f'"),
    (MemoryError(), "prog: error: out of memory"),
])
def test_user_errors_are_one_line(capsys, error, message):
    rc, err = _run(capsys, error)
    assert rc == 2
    assert err.startswith(message) and err.count("\n") == 1, err


def test_bugs_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        run_main("prog", lambda argv: 1 / 0, [])
    with pytest.raises(OSError):  # an OSError that is no user's doing (EBADF) is a bug
        run_main("prog", lambda argv: os.fstat(-1), [])


def test_exit_codes(capsys):
    assert run_main("prog", lambda argv: 0, []) == 0
    assert run_main("prog", lambda argv: None, []) == 0
    assert run_main("prog", lambda argv: 3, []) == 3


def test_writability_checks(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert check_writable_file(str(tmp_path / "new" / "deeper" / "out.json"), "--out").endswith("out.json")
    assert check_writable_dir(str(tmp_path / "new"), "--dir") == str(tmp_path / "new")
    with pytest.raises(UserError, match=r"--out '.*/file/out.json': '.*/file' is a file, not a folder"):
        check_writable_file(str(f / "out.json"), "--out")
    with pytest.raises(UserError, match="is a folder; give a file name"):
        check_writable_file(str(tmp_path), "--out")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_writable_dir(str(f), "--dir")
    assert os.listdir(tmp_path) == ["file"]  # the checks create nothing


def test_a_file_system_that_refuses_files(tmp_path):
    """/proc answers os.access(W_OK) with yes for root, yet holds no files of ours."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc")
    with pytest.raises(UserError, match="cannot create files in|no permission"):
        check_writable_file("/proc/nutrack-out.json", "--out")


def test_argument_errors_are_one_line(capsys):
    from nutrack._cli import ArgumentParser

    p = ArgumentParser(prog="prog")
    p.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as info:
        p.parse_args(["--n", "many"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == "prog: error: argument --n: invalid int value: 'many' (see --help)\n"
