"""docs/trial-record.md is checked against the record package: every key a trial or a study
keeps is in its tables with what it holds, and its tables name no other key."""

from __future__ import annotations

import re
from dataclasses import fields

from search.record import (
    SHORT_CURVE_POINTS,
    STUDY_ATTRS,
    TRIAL_ATTRS,
    LRRTSummary,
    keys,
    study,
    summary_attrs,
)
from search.record.summary import MEANINGS
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "trial-record.md"


def expected_rows() -> dict[str, str]:
    """Each key's row; a ``|`` in a meaning is escaped, as a Markdown table needs."""
    return {key: f"| `{key}` | {meaning.replace('|', chr(92) + '|')} |"
            for key, meaning in {**TRIAL_ATTRS, **summary_attrs(), **STUDY_ATTRS}.items()}


def test_every_key_the_record_writes_is_on_the_page_with_its_meaning() -> None:
    lines = set(PAGE.read_text(encoding="utf-8").splitlines())
    missing = [row for row in expected_rows().values() if row not in lines]
    assert not missing, "docs/trial-record.md lacks (or words otherwise):\n" + "\n".join(missing)


def test_the_page_names_no_key_the_record_does_not_write() -> None:
    named = re.findall(r"^\| `([^`]+)` \|", PAGE.read_text(encoding="utf-8"), re.M)
    assert sorted(named) == sorted(expected_rows())


def test_the_keys_the_issue_named_are_there() -> None:
    """The stale page said 200 points and left out these."""
    rows = expected_rows()
    for key in ("degraded", "repeat_of", "lrrt_limit_found", "lrrt_weight_change",
                "lrrt_ramp_steps", "lrrt_best_accuracy_lr", "lrrt_divergence_point",
                "lrrt_artifact_id", "lrrt_plot_artifact_id", "lrrt_reused"):
        assert key in rows
    assert f"({SHORT_CURVE_POINTS} points" in TRIAL_ATTRS["lrrt_curve"]


def test_every_key_defined_has_its_meaning_and_every_meaning_its_key() -> None:
    """The constants callers spell keys with and the reference tables are one list."""
    defined = {value for name, value in vars(keys).items()
               if name.isupper() and isinstance(value, str)} - set(keys.REASONS)
    assert defined == set(TRIAL_ATTRS)
    assert {value for name, value in vars(study).items()
            if name.startswith("STUDY_") and isinstance(value, str)} == set(STUDY_ATTRS)
    assert set(MEANINGS) == {field.name for field in fields(LRRTSummary)}
