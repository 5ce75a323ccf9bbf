"""A study written by an older cnnsearch (tests/fixtures/legacy_study) still reads the same
in `trials`, `export`, the report and the dashboard notes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from tests.conftest import ROOT, run_cli

FIXTURE = ROOT / "tests" / "fixtures" / "legacy_study"


@pytest.fixture
def legacy(tmp_path: Path) -> dict:
    """A copy of the fixture, so no test can change the file in the repository."""
    shutil.copy(FIXTURE / "study.db", tmp_path / "study.db")
    shutil.copytree(FIXTURE / "artifacts", tmp_path / "artifacts")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    return {"folder": tmp_path, "url": url,
            "study": optuna.load_study(study_name="legacy", storage=url)}


def test_trials_prints_the_same_table(legacy: dict) -> None:
    result = run_cli("trials", "--study", "legacy", "--storage", legacy["url"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == (FIXTURE / "trials.txt").read_text()


def test_export_writes_the_same_recipes(legacy: dict) -> None:
    out = legacy["folder"] / "export.json"
    result = run_cli("export", "--study", "legacy", "--storage", legacy["url"], "--top", "3",
                     "--format", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    expected = json.loads((FIXTURE / "export.json").read_text())
    written = json.loads(out.read_text())
    for document in (expected, written):
        document.pop("exported_at")
    assert written == expected


def test_dashboard_notes_are_the_same(legacy: dict) -> None:
    from search.record import TrialRecord
    from search.views.trial_notes import note_markdown

    expected = json.loads((FIXTURE / "notes.json").read_text())
    for trial in legacy["study"].trials:
        text = note_markdown(TrialRecord.from_frozen(trial), "URL")
        assert text == expected[str(trial.number)], trial.number


def test_report_shows_every_trial_with_its_verdict(legacy: dict) -> None:
    from search.views.report import build_report

    page = build_report(legacy["study"])
    for trial in legacy["study"].trials:
        assert f"#{trial.number} {trial.user_attrs['config_name']}" in page
    for reason in ("chance_level", "below_peers", "median"):
        assert f"pruned: {reason}" in page
    assert "0.02282" in page or "0.0228" in page  # trial 10's bounds in the results table


def test_its_config_still_matches_the_stored_fingerprint(legacy: dict) -> None:
    """Keys added since (e.g. lrrt.steps, lrrt.ramp) leave the fingerprint alone at their
    defaults, so more trials can still be added to a study made before they existed. It
    was stored with every key (n_trials and seed included): the legacy fingerprint."""
    from search.config import load_config
    from search.record import STUDY_FINGERPRINT

    stored = legacy["study"].user_attrs[STUDY_FINGERPRINT]
    assert load_config(FIXTURE / "legacy.yaml").legacy_fingerprint() == stored
