"""The command's output settings: log lines (Optuna's and ours, Python warnings) go above
the live status line, never glued to it; ``-q`` keeps errors only, ``-v`` adds Optuna's INFO
lines; everything is put back afterwards."""

from __future__ import annotations

import io
import logging
import re
import warnings

import optuna
import pytest

from search.cli.output import configured_output
from search.views.progress import Output, ProgressLine, SearchProgress, TrainProgress
from tests.search.views.test_progress import FakeClock, Terminal


def _live_trial(out: Terminal, output: Output) -> SearchProgress:
    progress = SearchProgress(out, total_trials=2, clock=FakeClock(), width=200, output=output)
    progress.trial_started(0, "B1FL2SGD", epochs=2)
    return progress


STATUS = "\rtrial 1/2 (#0 B1FL2SGD)  LR range test ...  ETA ?\x1b[K"


def test_by_default_optuna_info_is_silent_and_warnings_go_above_the_status_line() -> None:
    out = Terminal()  # stdout and stderr on one terminal, as under `script` or a shell
    before = optuna.logging.get_verbosity()
    with configured_output(err=out) as output:
        assert output.verbosity == "normal" and not output.quiet
        _live_trial(out, output)
        optuna.create_study()  # "[I ...] A new study created in memory ..."
        logging.getLogger("optuna.study").warning("careful")
        logging.getLogger("cnnsearch.worker").warning("cnnsearch: storage unreachable")
        warnings.warn("a library warning", UserWarning, stacklevel=1)
    text = out.getvalue()
    assert "A new study created" not in text
    warning = re.escape(STATUS) + r"\r\x1b\[K\[W [^\]]+\] careful\n" + re.escape(STATUS)
    assert re.match(warning, text), text
    assert (STATUS + "\r\x1b[Kcnnsearch: storage unreachable\n" + STATUS) in text
    assert "UserWarning: a library warning" in text
    assert optuna.logging.get_verbosity() == before  # put back, whatever it was


def test_verbose_prints_optuna_info_lines_above_the_status_line() -> None:
    out = Terminal()
    with configured_output("verbose", err=out) as output:
        _live_trial(out, output)
        optuna.create_study(study_name="loud")
    text = out.getvalue()
    assert re.match(re.escape(STATUS) + r"\r\x1b\[K\[I [^\]]+\] A new study created in memory "
                    r"with name: loud\n" + re.escape(STATUS) + "$", text), text


def test_quiet_keeps_errors_only() -> None:
    out, err = Terminal(), io.StringIO()
    study = optuna.create_study()
    study.optimize(lambda trial: 1.0, n_trials=1)
    with configured_output("quiet", err=err) as output:
        assert output.quiet
        progress = _live_trial(out, output)
        progress.epoch(1, 2, 0.01, 0.5)
        ProgressLine(2, progress.stream, output)(study, study.trials[0])
        TrainProgress(out, runs=1, epochs=1, output=output).run_finished(1, 0.5, 0.5, 1.0)
        logging.getLogger("optuna.study").warning("careful")
        logging.getLogger("optuna.study").error("optuna broke")
        logging.getLogger("cnnsearch.trial").error("cnnsearch: broken")
        warnings.warn("a library warning", UserWarning, stacklevel=1)
    assert out.getvalue() == ""
    assert re.fullmatch(r"\[E [^\]]+\] optuna broke\ncnnsearch: broken\n", err.getvalue())


def test_an_unknown_verbosity_is_refused() -> None:
    with pytest.raises(ValueError, match="verbosity must be one of"):
        Output("loud")
