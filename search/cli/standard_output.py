"""Standard output that fails in one line: a closed pipe (``cnnsearch trials | head -1``) or
a full device (``> /dev/full``) becomes ``OutputRefused``, a ``UserError``, instead of an
``OSError`` traceback from whichever ``print`` met it, or Python's "Exception ignored"
when it flushes at exit.

``guarded_stdout`` puts a text stream over the same file descriptor in ``sys.stdout`` for
the command's duration; the modules a command imports when it runs bind that stream. When
output was refused, the descriptor is pointed at ``/dev/null`` so nothing fails later.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator

from search.errors import UserError


class OutputRefused(UserError):
    """Standard output took nothing more: its reader went away, or its device is full."""

    def __init__(self, error: OSError) -> None:
        super().__init__(f"cannot write to standard output: {error.strerror or error}")


class _Descriptor(io.RawIOBase):
    """The raw writes to one file descriptor, each failure an ``OutputRefused``."""

    def __init__(self, descriptor: int) -> None:
        super().__init__()
        self.descriptor = descriptor

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.descriptor

    def isatty(self) -> bool:
        return os.isatty(self.descriptor)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            return os.write(self.descriptor, data)
        except OSError as error:
            raise OutputRefused(error) from None


def silence(stream: io.TextIOBase) -> None:
    """Point the stream's descriptor at ``/dev/null``: what it still buffers goes nowhere."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


@contextlib.contextmanager
def guarded_stdout() -> Iterator[None]:
    """``sys.stdout`` as a stream whose failures are ``OutputRefused``, within the block;
    left alone when it is not the process' own (a test's capture)."""
    original = sys.stdout
    if original is not sys.__stdout__ or original is None:
        yield
        return
    try:
        descriptor = original.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        yield
        return
    original.flush()
    guarded = io.TextIOWrapper(io.BufferedWriter(_Descriptor(descriptor)),
                               encoding=original.encoding, errors=original.errors,
                               line_buffering=original.line_buffering)
    sys.stdout = guarded
    try:
        yield
        guarded.flush()
    except OutputRefused:
        silence(guarded)
        raise
    finally:
        sys.stdout = original
        try:
            guarded.flush()
        except OutputRefused:
            silence(guarded)
            guarded.flush()
