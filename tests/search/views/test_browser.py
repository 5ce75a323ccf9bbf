"""The report and optuna-dashboard in a real browser (Debian's Chromium, headless, driven
by Playwright): what a user sees, on a study made by a real tiny search.

Screenshots go to the test's temporary folder; with ``CNNSEARCH_DOCS_SCREENSHOTS=docs/``
they are also written as ``docs/report.png`` and ``docs/dashboard-lrrt.png`` (the README's).
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.browser import (
    browser_missing,
    chromium,
    dashboard,
    open_dashboard_home,
    open_dashboard_trial,
    open_report,
)
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(browser_missing() is not None,
                                reason=browser_missing() or "")


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


def trials_of(study_info: dict) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study_info["study"], storage=study_info["url"]).trials


def showcase_pruned(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    """A trial the LRRT pruner rejected (preferred: its curve is the story), else any."""
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "the tiny search is expected to prune at least one design"
    return next((t for t in pruned if t.intermediate_values.keys() == {0}), pruned[0])


def test_report_in_chromium(tiny_visual_study: dict, browser, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = run_cli("report", "--study", "visual", "--storage", tiny_visual_study["url"],
                     "-o", str(report))
    assert result.returncode == 0, result.stderr
    screenshot = tmp_path / "report.png"
    view = open_report(browser, report, screenshot=screenshot)

    assert view.offline_requests == []  # opened from disk, nothing fetched
    assert "cnnsearch study visual" in view.text
    trials = trials_of(tiny_visual_study)
    for trial in trials:
        assert trial.user_attrs["config_name"] in view.text
    pruned = showcase_pruned(trials)
    assert pruned.user_attrs["prune_reason"] in view.text  # in the table
    # The LRRT figures: one per {dataset, range} group, drawn, pruned lines named with
    # their reason in the legend.
    assert "fashion-mnist, LR range [0.0001, 0.01]" in view.text
    assert f"pruned: {pruned.user_attrs['prune_reason']}" in view.text
    assert view.plots >= 2 + 1 + 3  # LRRT groups, best trials, Optuna views
    assert screenshot.stat().st_size > 20_000


def test_report_table_sorts_on_click(tiny_visual_study: dict, browser, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    assert run_cli("report", "--study", "visual", "--storage", tiny_visual_study["url"],
                   "-o", str(report)).returncode == 0
    page = browser.new_page()
    page.goto(report.resolve().as_uri())
    page.wait_for_selector("body[data-report-ready]")
    table = page.locator("table.results").first
    column = table.locator("th", has_text="max batch acc")
    values = "rows => rows.map(r => parseFloat(r.cells[4].getAttribute('data-value')))"
    column.click()
    ascending = table.locator("tbody tr").evaluate_all(values)
    column.click()
    descending = table.locator("tbody tr").evaluate_all(values)
    page.close()
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)
    assert len(ascending) >= 2


def test_dashboard_in_chromium(tiny_visual_study: dict, browser, tmp_path: Path) -> None:
    trials = trials_of(tiny_visual_study)
    pruned = showcase_pruned(trials)
    with dashboard(tiny_visual_study["url"], cwd=tmp_path) as server:
        home = open_dashboard_home(browser, server.url, "visual")
        assert "visual" in home
        study_id = optuna.load_study(study_name="visual",
                                     storage=tiny_visual_study["url"])._study_id
        screenshot = tmp_path / "dashboard-lrrt.png"
        page = open_dashboard_trial(browser, server.url, study_id, pruned.number,
                                    screenshot=screenshot)
    for trial in trials:  # the trial list
        assert f"Trial {trial.number}" in page.text
    name, reason = pruned.user_attrs["config_name"], pruned.user_attrs["prune_reason"]
    assert f"{name}: pruned, reason {reason}" in page.text  # the note, above the plot
    assert f"prune_reason {reason}" in page.text  # the user attrs table
    assert page.plot_width == 960  # the LRRT SVG, loaded and full width in the note
    assert f"lrrt-trial-{pruned.number}.svg" in page.thumbnails  # the Artifacts card
    assert screenshot.stat().st_size > 20_000
