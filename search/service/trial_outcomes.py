"""How a trial may end other than by returning a value, as exceptions the worker loop
(``search.service.trial_loop``) tells apart without importing the objective (and torch)."""

from __future__ import annotations


class TrialFailed(Exception):
    """A trial that cannot finish (e.g. out of memory); the reason is in its record."""


class TrialPaused(Exception):
    """The database stayed away longer than the storage retries: the trial stopped where it
    was, its checkpoint kept; it is recorded FAIL (``storage_unreachable``) once the database
    is back, and its retry resumes from the checkpoint."""


class TrialAbandoned(Exception):
    """Another process finished this trial while this one ran it (a reaper, after a long
    stop or a cut from the database; someone failing it from the dashboard): this process
    gives it up (``Objective.abandon`` says what becomes of its checkpoint)."""
