"""Folders a search writes into (artifacts, checkpoints), checked before anything starts.

A folder that cannot be written would otherwise be found out mid-trial, after the study
was created and data loaded; here it is a one-line ``UserError`` (exit code 2) up front.
Writability is proven by creating and removing a file, the only test that holds for
read-only mounts, ACLs and root alike.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from search.errors import UserError


def check_writable_folder(folder: str | None, flag: str) -> None:
    """Create ``folder`` if needed and prove it writable; ``UserError`` naming ``flag``
    otherwise. None or '' (the feature disabled) passes."""
    if not folder:
        return
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {folder} is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".cnnsearch-write-test-", dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise UserError(f"{flag} {folder} is not writable: "
                        f"{error.strerror or error}") from None
