"""The one exception type the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

MAX_MESSAGE = 1000
"""Longest message shown; whatever a message quotes (paths, names) cannot flood a terminal."""


def one_line(message: str) -> str:
    """``message`` as one line: control characters escaped (``\\n`` -> ``\\\\n``), at most
    ``MAX_MESSAGE`` characters."""
    text = "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in
                   message[: MAX_MESSAGE * 2])
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def first_line(error: BaseException, limit: int = 160) -> str:
    """An exception's first line (its type's name when it has no message), cut to
    ``limit`` characters: how a library's error is quoted in a one-line message."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= limit else line[:limit - 3] + "..."


class UserError(Exception):
    """Bad input from the user (config, flags, files, storage URL): never a traceback.

    The message is made one line however it was built (a file name with a newline, say)."""

    def __init__(self, message: object) -> None:
        super().__init__(one_line(str(message)))
