"""What cnnsearch keeps on a study: the config it was made with, that config's fingerprint,
the artifact folder it was searched with, and how many searching processes have joined it.
``StudyRecord`` reads them; ``StudyRecorder`` writes them. Nothing else reads or writes a
study's attrs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search.record.values import read_table

if TYPE_CHECKING:
    import optuna

ARTIFACT_ENV = "CNNSEARCH_ARTIFACT_DIR"
DEFAULT_ARTIFACT_DIR = "cnnsearch-artifacts"

STUDY_CONFIG = "cnnsearch_config"
STUDY_FINGERPRINT = "cnnsearch_config_fingerprint"
STUDY_ARTIFACT_DIR = "cnnsearch_artifact_dir"
STUDY_PROCESSES = "cnnsearch_sampling_processes"

STUDY_ATTRS = read_table("""
cnnsearch_config              the YAML the study was made with (as JSON), with the seed it
                              was made with: it fixes the study's images
cnnsearch_config_fingerprint  the hash of the settings that make the study what it is:
                              another config is refused
cnnsearch_artifact_dir        the artifact folder it was searched with (the report and the
                              dashboard look there first)
cnnsearch_sampling_processes  how many searching processes have joined the study: each takes
                              the next number (its sampler seed)
""")
"""Study attr key -> what it holds (the trial-record page of the docs is checked against
it)."""


@dataclass(frozen=True)
class StudyRecord:
    """A study's attrs as cnnsearch reads them; each None (0) where the study has none."""

    config: Mapping[str, Any] | None = None
    """The YAML document the study was made with (``search.config.parse_config`` reads
    it)."""
    fingerprint: str | None = None
    artifact_dir: str | None = None
    processes: int = 0

    @classmethod
    def of(cls, study: optuna.study.Study | optuna.study.FrozenStudy) -> StudyRecord:
        attrs = study.user_attrs
        config, processes = attrs.get(STUDY_CONFIG), attrs.get(STUDY_PROCESSES)
        return cls(
            config=config if isinstance(config, dict) else None,
            fingerprint=attrs.get(STUDY_FINGERPRINT),
            artifact_dir=attrs.get(STUDY_ARTIFACT_DIR) or None,
            processes=int(processes) if isinstance(processes, int) else 0,
        )


def artifact_folder(flag: str | None, searched_with: str | None = None) -> str | None:
    """Where a study's artifacts are: ``--artifact-dir`` (``''``: none), else the folder the
    study was searched with (``StudyRecord.artifact_dir``), else ``$CNNSEARCH_ARTIFACT_DIR``,
    else ``cnnsearch-artifacts``; None for none."""
    if flag is not None:
        return flag or None
    if searched_with:
        return searched_with
    return os.environ.get(ARTIFACT_ENV, DEFAULT_ARTIFACT_DIR) or None


class StudyRecorder:
    """The one writer of a study's attrs."""

    def __init__(self, study: optuna.study.Study) -> None:
        self.study = study

    def made_with(self, *, config: Mapping[str, Any], fingerprint: str,
                  artifact_dir: str | None) -> None:
        """What the study is: written once, by the process that finds it without them."""
        self.study.set_user_attr(STUDY_CONFIG, dict(config))
        self.study.set_user_attr(STUDY_FINGERPRINT, fingerprint)
        if artifact_dir:
            self.study.set_user_attr(STUDY_ARTIFACT_DIR, artifact_dir)

    def process_joined(self) -> int:
        """This process's number among those that have searched the study (0 for the
        first), counted up; the caller holds the study's lock around it."""
        index = StudyRecord.of(self.study).processes
        self.study.set_user_attr(STUDY_PROCESSES, index + 1)
        return index
