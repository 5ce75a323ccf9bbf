"""Where a command's log lines go, set up once per command from ``-q``/``-v``: the
``Output`` the CLI hands down, and the logging around it.

Optuna's INFO lines are off by default (``ProgressLine`` already reports each trial);
Optuna's and cnnsearch's warnings, and Python's, go to stderr through a handler that clears
the live status line first and redraws it after (``LogAboveStatus``), so a log line is
never glued to the status line. ``quiet`` keeps errors and results only; ``verbose`` adds
Optuna's INFO lines, printed the same way above the status line. Like Optuna's own CLI,
which sets up logging in its App, this is the command line's business: nothing below it
reads or changes process-wide output state.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO

from search.views.progress import NORMAL, QUIET, VERBOSE, Output

LOG_LEVELS = {QUIET: logging.ERROR, NORMAL: logging.WARNING, VERBOSE: logging.INFO}
OPTUNA_FORMAT = "[%(levelname)1.1s %(asctime)s] %(message)s"
"""Optuna's own log format, so ``--verbose`` lines read as Optuna users expect."""


class LogAboveStatus(logging.StreamHandler):
    """A stream handler that lifts the live status line (``StatusLine.lifted``) around each
    record, so the record starts on its own line and the status line comes back under it."""

    def __init__(self, stream: TextIO, output: Output) -> None:
        super().__init__(stream)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        status = self.output.status
        if status is None:
            super().emit(record)
            return
        with status.lifted():
            super().emit(record)


@contextlib.contextmanager
def configured_output(verbosity: str = NORMAL, err: TextIO | None = None) -> Iterator[Output]:
    """Within the block: Optuna logs at the verbosity's level (WARNING by default, not INFO)
    and, like cnnsearch's own loggers and Python warnings, through ``LogAboveStatus`` on
    ``err`` (default: stderr); the ``Output`` it yields is what the command hands to its
    displays. Everything is put back afterwards."""
    import optuna.logging

    output = Output(verbosity)
    level = LOG_LEVELS[verbosity]
    stream = err if err is not None else sys.stderr
    optuna_handler = LogAboveStatus(stream, output)
    optuna_handler.setFormatter(logging.Formatter(OPTUNA_FORMAT))
    own_handler = LogAboveStatus(stream, output)
    own_handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = {name: logging.getLogger(name) for name in ("optuna", "cnnsearch", "py.warnings")}
    saved = (optuna.logging.get_verbosity(),
             {name: (logger.level, logger.propagate) for name, logger in loggers.items()})

    optuna.logging.disable_default_handler()
    optuna.logging.set_verbosity(level)
    loggers["optuna"].addHandler(optuna_handler)
    for name in ("cnnsearch", "py.warnings"):
        loggers[name].setLevel(level)
        loggers[name].propagate = False
        loggers[name].addHandler(own_handler)
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            if verbosity == QUIET:
                warnings.simplefilter("ignore")
            yield output
    finally:
        output.status = None
        logging.captureWarnings(False)
        loggers["optuna"].removeHandler(optuna_handler)
        for name in ("cnnsearch", "py.warnings"):
            loggers[name].removeHandler(own_handler)
        optuna_level, levels = saved
        for name, (logger_level, propagate) in levels.items():
            loggers[name].setLevel(logger_level)
            loggers[name].propagate = propagate
        optuna.logging.set_verbosity(optuna_level)
        optuna.logging.enable_default_handler()
