"""The files a command writes for its user (an export, a report, a trained design's weights
and summary, a range test's JSON and HTML): checked before the work, written whole or not
at all, every failure one line.

A command first proves it can write where it was told (``output_file``, ``output_folder``):
a missing folder, a folder given for a file (or a file for a folder), a read-only mount are
refused before any study is read or any epoch trained. A regular file is then written to a
temp file beside it and renamed into place (``write_output``), so a full disk leaves the
previous file or none, never half of one. A device or a pipe (``-o /dev/stdout``, a FIFO)
is written in place: renaming over it would replace the device.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from search.errors import UserError


def _problem(error: OSError) -> str:
    return error.strerror or str(error)


def _is_special(path: Path) -> bool:
    """An existing path that is neither a regular file nor a folder: a device, a pipe."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _probe(folder: Path, flag: str, shown: Path) -> None:
    """Prove ``folder`` writable by creating and removing a file in it (the only test that
    holds for read-only mounts, ACLs and root alike)."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".cnnsearch-write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        where = "" if shown == folder else f" cannot be written: folder {folder}"
        raise UserError(f"{flag} {shown}{where} is not writable ({_problem(error)})") from None


def output_file(path: str | Path, flag: str) -> Path:
    """``path`` once it is known that a file can be written there: not a folder, its folder
    exists and takes new files (a device or a pipe is taken as it is). ``flag`` names the
    option in messages (``-o``)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder: give a file name")
    if _is_special(path):
        return path
    folder = Path(os.path.realpath(path)).parent
    if not folder.is_dir():
        raise UserError(f"cannot write {flag} {path}: folder {path.parent} does not exist")
    _probe(folder, flag, path)
    return path


def output_folder(path: str | Path, flag: str) -> Path:
    """``path`` as a folder that takes new files (created, with its parents, if missing);
    ``UserError`` for a file, or a folder that cannot be created or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{flag} {path} cannot be created ({_problem(error)})") from None
    _probe(path, flag, path)
    return path


def write_output(path: Path, content: str | bytes | Callable[[BinaryIO], None],
                 flag: str) -> Path:
    """Write ``content`` (text, bytes, or a function that writes to a binary handle, such
    as ``torch.save``) to ``path``: atomically for a regular file (the previous file, if
    any, keeps its permissions), in place for a device or a pipe. ``UserError`` naming
    ``flag`` when the write fails, whatever the writer raised (``torch.save`` raises
    ``RuntimeError`` on a full disk)."""
    if isinstance(content, str):
        content = content.encode("utf-8")

    def write(handle: BinaryIO) -> None:
        if callable(content):
            content(handle)
        else:
            handle.write(content)

    try:
        if _is_special(path):
            with open(path, "wb") as handle:
                write(handle)
            return path
        target = Path(os.path.realpath(path))
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            if target.exists():
                os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    except UserError:
        raise
    except Exception as error:  # OSError, or a library's own type for the same failure
        detail = _problem(error) if isinstance(error, OSError) else str(error).strip()
        raise UserError(f"cannot write {flag} {path}: "
                        f"{detail.splitlines()[0] if detail else type(error).__name__}"
                        ) from None
    return path
