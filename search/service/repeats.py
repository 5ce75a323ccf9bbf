"""Designs sampled again: what ``repeats: skip`` finds, and when a search stops because
nothing new is left to try.

A design is a trial's whole recipe but its run seed (``search.record.design_key``; a
study's config is fixed by its fingerprint, so two trials differ only where they sampled
differently). A trial that samples the design of a finished (COMPLETE or PRUNED) trial is a
**repeat**. Under ``skip`` the objective finishes it at once,
no range test and no training, as the earlier trial finished:

- a repeat of a COMPLETE trial is COMPLETE with that trial's values. TPE ranks trials by
  value, so it sees the design where it already stood, as a second training would have
  put it, give or take the seed; a value invented for the repeat (a pruned trial, the worst
  score) would tell TPE that a good design's parameters are bad. The best value is
  unchanged (the repeat ties its earlier trial, which ``summary_line`` and the report keep,
  being first), and a repeat has no range test or bounds of its own, so the LRRT gate's
  peers, the median pruner's curves, export and the report's best trials do not count it
  twice;
- a repeat of a PRUNED trial is PRUNED (reason ``repeat``), with the earlier trial's last
  reported value at its step in a single-objective study, so TPE ranks it with the pruned
  trials exactly where that trial is.

Either way the trial records ``repeat_of`` (``search.record.REPEAT_OF``): tables show it as
``repeat of N``. ``allow`` trains every repeat again (seed-variance studies).

``RepeatGuard`` stops a search once every design of the space has a finished trial (under
``skip``, and always for ``grid`` and ``brute_force``, which enumerate it), or, for ``tpe``
and ``random`` under ``skip``, after ``MAX_CONSECUTIVE_REPEATS`` repeats in a row; its
``line`` says why, for the search or worker to print.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import SearchConfig
from search.config.space import design_count
from search.method.optuna_samplers import EXHAUSTIVE_SAMPLERS, MAX_CONSECUTIVE_REPEATS
from search.method.trial_config import TrialConfig
from search.record import TrialRecord, design_key, read_trials

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def earlier_trial(trial: optuna.Trial, config: TrialConfig) -> FrozenTrial | None:
    """The finished trial whose design ``trial`` (sampled as ``config``) sampled again, None
    for a new design; of several, the first that was trained (not itself a repeat)."""
    design = design_key(config.to_dict())
    same = [(record, frozen) for frozen in trial.study.get_trials(deepcopy=False,
                                                                   states=FINISHED)
            if frozen.number != trial.number
            and (record := TrialRecord.from_frozen(frozen)).design_key == design]
    same.sort(key=lambda pair: (pair[0].repeat_of is not None, pair[0].number))
    return same[0][1] if same else None


def tried_designs(study: optuna.study.Study) -> int:
    """How many distinct designs the study's finished trials hold."""
    return len({record.design_key for record in read_trials(study, FINISHED)})


class RepeatGuard:
    """``study.optimize`` callback (and a check before the first trial): stop the search
    when nothing new is left to try. ``line`` says why, once it has."""

    def __init__(self, config: SearchConfig) -> None:
        self.skip = config.repeats == "skip"
        self.exhaustive = config.sampler in EXHAUSTIVE_SAMPLERS
        self.sampler = config.sampler
        self.designs = design_count(config)
        self.in_a_row = 0
        """Repeats in a row among the trials this process ran."""
        self.line: str | None = None

    def check(self, study: optuna.study.Study) -> str | None:
        """Why the search should stop now (also sets ``line``); None to go on."""
        if not (self.skip or self.exhaustive):
            return None
        tried = tried_designs(study)
        if tried >= self.designs:
            self.line = (f"search stops: all {self.designs} designs of the space have been "
                         "tried")
        elif (self.skip and not self.exhaustive
              and self.in_a_row >= MAX_CONSECUTIVE_REPEATS):
            self.line = (f"search stops: {self.sampler} sampled a design already tried "
                         f"{self.in_a_row} times in a row ({tried} of the {self.designs} "
                         "designs of the space tried)")
        return self.line

    def __call__(self, study: optuna.study.Study, trial: FrozenTrial) -> None:
        repeat = TrialRecord.from_frozen(trial).repeat_of is not None
        self.in_a_row = self.in_a_row + 1 if repeat else 0
        if self.check(study) is not None:
            study.stop()
