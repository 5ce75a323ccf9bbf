"""The files commands write for their users: refused up front where they cannot be written
(one line, exit 2, before any work), written whole or not at all.

Through the real CLI: ``export -o`` and ``report -o`` into a missing folder, onto a folder,
onto ``/dev/full``, into a read-only mount (a real bind mount: root ignores file modes);
``train --out`` and ``lrrt --out`` onto a file and into a read-only mount. Skipped with the
reason where the machine cannot mount.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from search.errors import UserError
from search.views.output_files import output_file, output_folder, write_output
from tests.conftest import ROOT, run_cli, tiny_config, write_config
from tests.mounts import nearly_full_tmpfs, read_only_bind

LEGACY = ROOT / "tests" / "fixtures" / "legacy_study"


@pytest.fixture
def study(tmp_path: Path) -> str:
    """A copy of the legacy study (completed trials to export and report)."""
    shutil.copy(LEGACY / "study.db", tmp_path / "study.db")
    return f"sqlite:///{tmp_path / 'study.db'}"


def assert_one_line_exit_2(result, *words: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("cnnsearch: error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


# --------------------------------------------------------------------------- in process
def test_a_file_is_replaced_whole_or_left_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("previous\n")
    target.chmod(0o640)
    write_output(output_file(target, "-o"), "new\n", "-o")
    assert target.read_text() == "new\n" and stat.S_IMODE(target.stat().st_mode) == 0o640

    def half_then_fail(handle) -> None:
        handle.write(b"half")
        raise RuntimeError("unexpected pos 81920")

    with pytest.raises(UserError, match="cannot write -o .*: unexpected pos 81920"):
        write_output(target, half_then_fail, "-o")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml"]


def test_a_full_disk_leaves_the_previous_file(tmp_path: Path) -> None:
    with nearly_full_tmpfs(tmp_path / "disk", 12) as disk:
        target = disk / "report.html"
        target.write_text("previous")
        with pytest.raises(UserError, match="No space left on device"):
            write_output(output_file(target, "-o"), "x" * 200_000, "-o")
        assert target.read_text() == "previous"
        assert sorted(p.name for p in disk.iterdir()) == [".filler", "report.html"]


def test_a_link_to_a_file_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text("old")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    write_output(output_file(link, "-o"), "new", "-o")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.parametrize(("make", "words"), [
    (lambda tmp: tmp / "missing" / "x.yaml", ["folder", "does not exist"]),
    (lambda tmp: tmp, ["is a folder"]),
    (lambda tmp: tmp / "file.txt" / "x.yaml", ["does not exist"]),
])
def test_a_file_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path, make,
                                                                  words: list[str]) -> None:
    (tmp_path / "file.txt").write_text("a file")
    with pytest.raises(UserError) as refused:
        output_file(make(tmp_path), "-o")
    assert all(word in str(refused.value) for word in words), refused.value


def test_a_folder_for_outputs_is_created_and_a_file_refused(tmp_path: Path) -> None:
    assert output_folder(tmp_path / "a" / "b", "--out").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="--out .*file is not a folder"):
        output_folder(tmp_path / "file", "--out")


# --------------------------------------------------------------------------- the real CLI
@pytest.mark.parametrize("command", ["export", "report"])
def test_an_output_file_that_cannot_be_written_is_one_line_exit_2(
    study: str, tmp_path: Path, command: str
) -> None:
    (tmp_path / "a-file").write_text("x")
    cases = {
        str(tmp_path / "missing" / "out.html"): "does not exist",
        str(tmp_path): "is a folder",
        str(tmp_path / "a-file" / "out.html"): "does not exist",
        "/dev/full": "No space left on device",
    }
    for target, words in cases.items():
        result = run_cli(command, "--study", "legacy", "--storage", study, "-o", target,
                         cwd=tmp_path, timeout=120)
        assert_one_line_exit_2(result, words)
    assert Path("/dev/full").is_char_device()  # written in place, never renamed over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "study.db"]


@pytest.mark.parametrize("command", ["export", "report"])
def test_an_output_file_on_a_read_only_mount_is_one_line_exit_2(
    study: str, tmp_path: Path, command: str
) -> None:
    (tmp_path / "source").mkdir()
    with read_only_bind(tmp_path / "source", tmp_path / "read-only") as folder:
        result = run_cli(command, "--study", "legacy", "--storage", study, "-o",
                         str(folder / "out.html"), cwd=tmp_path, timeout=120)
        assert_one_line_exit_2(result, "Read-only file system")
    assert not any((tmp_path / "source").iterdir())


def test_train_and_lrrt_refuse_an_output_folder_they_cannot_write_before_any_work(
    tmp_path: Path,
) -> None:
    """Before: the design trained (or the range test ran), then the folder traced back."""
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "source").mkdir()
    config = write_config(tmp_path / "c.yaml", tiny_config())
    export = str(LEGACY / "export.json")
    with read_only_bind(tmp_path / "source", tmp_path / "read-only") as read_only:
        for out, words in ((tmp_path / "a-file", "is not a folder"),
                           (read_only / "runs", "Read-only file system"),
                           (read_only, "Read-only file system")):
            for command in (["train", "--from", export], ["lrrt", "--config", str(config)]):
                result = run_cli(*command, "--device", "cpu", "--out", str(out), cwd=tmp_path,
                                 timeout=120)
                assert_one_line_exit_2(result, "--out", words)
    assert (tmp_path / "a-file").read_text() == "x"
    assert not any((tmp_path / "source").iterdir())
