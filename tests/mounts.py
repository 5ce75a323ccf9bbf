"""Real file systems for the tests of full disks and read-only folders: a small tmpfs filled
to a few kilobytes, a read-only bind mount. Mounting needs root (CAP_SYS_ADMIN); where the
machine does not allow it the test is skipped, saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PAGE = 4096


def _mount(*arguments: str) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    result = subprocess.run(["mount", *arguments], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here (needs root with CAP_SYS_ADMIN): "
                    f"{result.stderr.strip() or result.returncode}")


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


@contextmanager
def nearly_full_tmpfs(path: Path, free_kib: int, size_kib: int = 2048) -> Iterator[Path]:
    """A tmpfs of ``size_kib`` at ``path`` filled so that about ``free_kib`` KiB stay free
    (tmpfs counts whole 4 KiB pages)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kib}k,mode=0777", "tmpfs", str(path))
    try:
        filler = path / ".filler"
        with open(filler, "wb") as handle:
            handle.write(b"\0" * (free_bytes(path) - free_kib * 1024))
        assert abs(free_bytes(path) - free_kib * 1024) <= PAGE, free_bytes(path)
        yield path
    finally:
        _unmount(path)


@contextmanager
def read_only_bind(source: Path, target: Path) -> Iterator[Path]:
    """``source`` mounted read-only at ``target`` (a bind mount remounted ``ro``): even
    root cannot write there, as on a read-only volume."""
    target.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(source), str(target))
    try:
        result = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {result.stderr.strip()}")
        yield target
    finally:
        _unmount(target)
