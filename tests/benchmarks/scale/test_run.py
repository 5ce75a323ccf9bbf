"""The scale benchmark's quick mode (16 lightweight worker processes through one proxy on a
real PostgreSQL, one SIGKILLed, the database restarted): its output is well formed and the
invariants hold. Speed is not checked here: BENCHMARKS.md has the figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from benchmarks.scale.run import check_trials
from search.service.proxy import LOCK_CONNECTIONS, POOL_OVERFLOW
from tests.conftest import ROOT


def _trial(number: int, state: TrialState, **system_attrs: object) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(state=state, value=1.0 if state == TrialState.COMPLETE
                                      else None, system_attrs=system_attrs)
    trial.number, trial._trial_id = number, number + 100
    return trial


def test_lost_and_duplicated_trials_are_found() -> None:
    """The checks can fail: a trial a worker told COMPLETE that the database lost, one told
    twice, a retry that completed beside its original, a budget overrun."""
    frozen = [_trial(0, TrialState.COMPLETE), _trial(1, TrialState.FAIL),
              _trial(2, TrialState.COMPLETE, failed_trial=1)]
    logged = [{"id": 100, "state": "COMPLETE"}, {"id": 102, "state": "COMPLETE"}]
    assert check_trials(frozen, logged, 2) == {
        "finished": 2, "budget_exact": True, "lost": 0, "duplicated": 0, "reaped": 1}
    lost = check_trials(frozen, [*logged, {"id": 101, "state": "COMPLETE"}], 2)
    assert lost["lost"] == 1
    assert check_trials(frozen, [*logged, logged[0]], 2)["duplicated"] == 1
    twice = [*frozen, _trial(3, TrialState.COMPLETE, failed_trial=1)]
    checked = check_trials(twice, logged, 2)
    assert checked["duplicated"] == 2 and not checked["budget_exact"]  # one family, 3 > 2
    waiting = check_trials([*frozen, _trial(3, TrialState.WAITING)], logged, 2)
    assert not waiting["budget_exact"]


@pytest.mark.postgres
def test_quick_mode_keeps_the_budget_and_loses_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("CNNSEARCH_STORAGE", None)
    result = subprocess.run([sys.executable, "-m", "benchmarks.scale.run", "--quick", "--out",
                             str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (outcome,) = json.loads((tmp_path / "results.json").read_text())
    assert outcome["workers"] == 16 and outcome["max_trials"] == 48
    assert outcome["budget_exact"] and outcome["finished"] == 48
    assert outcome["lost"] == 0 and outcome["duplicated"] == 0
    assert outcome["killed"] == 1 and outcome["restarted_database"]
    assert outcome["reaped"] >= 1  # the killed worker's trial, failed and retried
    assert not outcome["torch_imported"]
    # Direct, 16 workers would hold up to 64 connections; through the proxy: its pool, the
    # study's slot lock and the benchmark's own psql.
    assert 1 <= outcome["peak_connections"] <= 8 + POOL_OVERFLOW + 1 + 1 <= 32
    assert LOCK_CONNECTIONS <= 8
    assert 0 < outcome["ask_tell_p50_ms"] <= outcome["ask_tell_p99_ms"]
    assert 0 < outcome["worker_pss_mib"] <= outcome["worker_rss_mib"]
    lines = (tmp_path / "table.md").read_text().splitlines()
    assert lines[0].startswith("| workers |") and len(lines) == 3
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:3] == ["16", "48 / 48", "yes"] and cells[10:12] == ["0", "0"]
