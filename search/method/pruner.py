"""``LRRTPruner``: rejects a design at the LR range test step, then defers to a standard pruner.

The verdict at the LRRT step is a pure function of the trial's recorded range test, its
peers' scores and the gate's rules (``lrrt_verdict``); both come from storage, so every
worker of a distributed study reaches the same decision. The objective asks the pruner for
the ``Verdict`` and records it, reason and evidence, in the trial: there is no side channel.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.trial import TrialState

from search.method.lrrt.curve import STILL_STEPS, WEIGHTS_STILL, movement_per_still_steps
from search.method.lrrt.result import LR_FREE_RULE
from search.record import (
    BELOW_PEERS,
    CHANCE_LEVEL,
    DEFAULT_CHANCE_MARGIN,
    DIVERGED,
    NOT_PROMOTED,
    UNSTABLE,
    LRRTSummary,
    Verdict,
    chance_threshold,
    read_trials,
)

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial

LRRT_STEP = 0
"""The step the objective reports the LRRT score at; training epochs report from step 1."""


def below_peers(score: float, peer_scores: Sequence[float], percentile: float,
                margin: float) -> bool:
    """Whether ``score`` is more than ``margin`` under the peers' ``percentile``."""
    return score < float(np.percentile(peer_scores, percentile)) - margin


@dataclass(frozen=True)
class GateRules:
    """The LRRT gate's settings: the one place their defaults are written. The config's
    ``pruner`` section takes its defaults from here and builds one
    (``PrunerSettings.gate_rules``), which travels whole to the ``LRRTPruner``."""

    chance_margin: float = DEFAULT_CHANCE_MARGIN
    """See ``chance_threshold``: how far from chance to perfect a score must be."""
    percentile: float = 25.0
    """The peers' percentile a score is compared with (``below_peers``)."""
    peer_margin: float = 0.02
    """Absolute accuracy under that percentile that counts as "far below"."""
    warmup_trials: int = 4
    """Peers (that learned) needed before ``below_peers`` applies."""
    prune_unstable: bool = False
    """Prune designs whose bound rules disagree beyond the config's factor."""
    min_usable_fraction: float = 0.05
    """A test that diverged before this share of its ramp is ``diverged`` even if its few
    points looked fine."""
    peer_rejection: bool = False
    """Apply ``below_peers`` (off by default: it rejects designs that train, only worse than
    their peers; the after-LRRT pruner ranks those)."""
    chance_needs_limit: bool = True
    """Judge ``chance_level`` only when the ramp tested the rates the design trains at
    (``ramp_covered_bounds``), and always when it left the weights still, however high its
    noisy score peaked."""
    weights_still: float = WEIGHTS_STILL
    """A ramp that moved the weights by less than this share of their norm (per
    ``STILL_STEPS`` batches) trained nothing."""
    promotion_eta: int = 0
    """Rung-0 promotion (asynchronous successive halving on the range-test score): a design
    the gate keeps trains on only if its score is in the top 1/``promotion_eta`` of every
    range test so far (``promoted``; ``not_promoted`` otherwise). 0 or 1: off."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.chance_margin < 1.0:
            raise ValueError(f"chance_margin must be in [0, 1), got {self.chance_margin}")
        if not 0.0 <= self.percentile <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {self.percentile}")
        if self.peer_margin < 0.0:
            raise ValueError(f"peer_margin must be >= 0, got {self.peer_margin}")
        if self.warmup_trials < 0:
            raise ValueError(f"warmup_trials must be >= 0, got {self.warmup_trials}")
        if not 0.0 <= self.min_usable_fraction < 1.0:
            raise ValueError("min_usable_fraction must be in [0, 1), got "
                             f"{self.min_usable_fraction}")
        if not 0.0 <= self.weights_still < 1.0:
            raise ValueError(f"weights_still must be in [0, 1), got {self.weights_still}")
        if self.promotion_eta < 0:
            raise ValueError(f"promotion_eta must be >= 0, got {self.promotion_eta}")

    def learned(self, summary: LRRTSummary) -> bool:
        """Whether the test's best smoothed accuracy is clearly above chance."""
        return summary.score >= chance_threshold(summary.num_classes, self.chance_margin)


def weight_movement(summary: LRRTSummary) -> float | None:
    """How far the ramp moved the weights, relative to their norm, per ``STILL_STEPS``
    batches (a ramp moves them about in proportion to its length); None if not measured."""
    if summary.weight_change is None:
        return None
    return movement_per_still_steps(summary.weight_change, summary.ramp_steps)


def weights_still(summary: LRRTSummary, still: float = WEIGHTS_STILL) -> bool:
    """Whether the ramp left the weights where they started: moved by less than ``still``
    of their norm per ``STILL_STEPS`` batches. Then its best batch accuracy is the noise of
    an untrained network, however high it peaked."""
    moved = weight_movement(summary)
    return moved is not None and moved < still


def ramp_covered_bounds(summary: LRRTSummary) -> bool:
    """Whether a score at chance over this ramp is evidence the design will not train: the
    ramp found its upper limit (so it went past the rates the design trains at) and its
    bounds are not below the tested range. A ramp still improving at its end (a slow
    starter: SGD at small rates), or one whose bounds fall under its first LR, never saw the
    design train at its bounds, so a low score says nothing. (A ramp that left the weights
    still is judged before this, by ``weights_still``.) Trials recorded before
    ``limit_found`` was are taken as covered. A ramp run again below its range
    (``extension == "down"``) covers every rate: the first ramp diverged from the range's
    first rates, the second measured all those below them, so a score at chance there
    (a network that died, its loss flat at chance, with no limit to find) means no rate
    trains it."""
    if summary.extension == "down":
        return True
    if summary.limit_found is False:
        return False
    low = summary.lr_range[0] if summary.lr_range else None
    return not (summary.bounds and low is not None and summary.bounds[1] < low)


def lrrt_verdict(summary: LRRTSummary, peer_scores: Sequence[float],
                 rules: GateRules) -> Verdict | None:
    """The reason to reject a design at the LRRT step, with its evidence; None keeps it.

    ``peer_scores`` are the scores of the designs of the same group that learned.
    """
    threshold = chance_threshold(summary.num_classes, rules.chance_margin)
    score = {"score": round(summary.score, 6), "threshold": round(threshold, 6)}
    learned = summary.score >= threshold
    too_early = summary.completed_fraction < rules.min_usable_fraction
    if summary.diverged and (not learned or too_early or not summary.has_bounds):
        return Verdict(DIVERGED, summary.divergence or "",
                       {**score, "completed_fraction": summary.completed_fraction})
    if summary.bound_rule == LR_FREE_RULE:  # a gate only: its bounds are the optimizer's
        return _still_weights(summary, rules, score)
    if summary.extension == "down" and not (summary.has_bounds and summary.lr_range
                                            and summary.bounds[1] >= summary.lr_range[0]):
        low = summary.lr_range[0] if summary.lr_range else float("nan")
        return Verdict(DIVERGED,
                       f"past its limit from the first rate of a ramp run again below its "
                       f"range, down to {low:.3g}: no rate it measured trains it",
                       {**score, "lowest_lr": low})
    if rules.chance_needs_limit and weights_still(summary, rules.weights_still):
        return _still_weights(summary, rules, score)
    if not learned and not (rules.chance_needs_limit and not ramp_covered_bounds(summary)):
        return Verdict(CHANCE_LEVEL,
                       f"best smoothed accuracy {summary.score:.3f} < {threshold:.3f} needed",
                       score)
    if not summary.has_bounds:
        return Verdict(DIVERGED, "the curve gave no LR bounds", score)
    if rules.prune_unstable and summary.unstable:
        return Verdict(UNSTABLE, f"bound rules disagree {summary.disagreement:.3g}x",
                       {"disagreement": summary.disagreement or 0.0})
    if rules.peer_rejection and len(peer_scores) >= max(rules.warmup_trials, 1) and below_peers(
        summary.score, peer_scores, rules.percentile, rules.peer_margin
    ):
        cut = float(np.percentile(peer_scores, rules.percentile))
        return Verdict(BELOW_PEERS,
                       f"score {summary.score:.3f} < peers' p{rules.percentile:g} {cut:.3f} "
                       f"- {rules.peer_margin:g} ({len(peer_scores)} peers)",
                       {"score": round(summary.score, 6), "peer_percentile": round(cut, 6),
                        "peer_margin": rules.peer_margin, "peers": len(peer_scores)})
    return None


def _still_weights(summary: LRRTSummary, rules: GateRules,
                   score: dict[str, float]) -> Verdict | None:
    """The ``chance_level`` verdict of a ramp that left the weights where they were (None
    when it moved them)."""
    if not weights_still(summary, rules.weights_still):
        return None
    moved = weight_movement(summary)
    return Verdict(CHANCE_LEVEL,
                   f"the range test moved the weights by {moved:.2g} of their norm per "
                   f"{STILL_STEPS} batches (< {rules.weights_still:g}): its rates are too "
                   "small to train this design",
                   {**score, "weight_movement": round(moved or 0.0, 9),
                    "weights_still": rules.weights_still})


def peer_scores(study: Study, trial_number: int, summary: LRRTSummary,
                rules: GateRules) -> list[float]:
    """Scores of the other designs of the same group whose test learned."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return [
        other.lrrt.score for other in read_trials(study, states)
        if other.number != trial_number and other.lrrt is not None
        and other.lrrt.group == summary.group and rules.learned(other.lrrt)
    ]


def promoted(score: float, others: Sequence[float], eta: int) -> bool:
    """Asynchronous successive halving's rung-0 rule (as Optuna's SuccessiveHalvingPruner):
    among ``others`` and this ``score``, the top ``len // eta`` go on (at least the best
    one, so the first designs always do)."""
    ranked = sorted([*others, score], reverse=True)
    return score >= ranked[max(len(ranked) // eta - 1, 0)]


def promotion_verdict(score: float, others: Sequence[float], eta: int) -> Verdict | None:
    """``not_promoted`` when ``score`` is not in the top 1/``eta``; None when it is (or
    promotion is off)."""
    if eta <= 1 or promoted(score, others, eta):
        return None
    ranked = sorted([*others, score], reverse=True)
    cut = ranked[max(len(ranked) // eta - 1, 0)]
    return Verdict(NOT_PROMOTED,
                   f"range-test score {score:.3f} not in the top 1/{eta} of {len(ranked)} "
                   f"(needs {cut:.3f})",
                   {"score": round(score, 6), "promotion_cut": round(cut, 6),
                    "promotion_eta": eta, "tests": len(ranked)})


def range_test_scores(study: Study, trial_number: int) -> list[float]:
    """Every other trial's range-test score: what rung-0 promotion ranks a design against."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return [other.lrrt.score for other in read_trials(study, states)
            if other.number != trial_number and other.lrrt is not None]


def pruner_label(pruner: BasePruner) -> str:
    """``MedianPruner`` -> ``median``: the reason recorded when the wrapped pruner decides."""
    name = type(pruner).__name__.removesuffix("Pruner")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class LRRTPruner(BasePruner):
    """Prunes at ``LRRT_STEP`` a trial that diverged, stayed at chance level, is unstable
    (its bound rules disagree, when asked) or scores far below its peers of the same
    {dataset, LR range} group, by the ``rules`` (``GateRules``); after that step the
    ``wrapped`` pruner decides (None never prunes the training epochs).
    """

    def __init__(self, wrapped: BasePruner | None = None,
                 rules: GateRules | None = None) -> None:
        self.wrapped = wrapped
        self.rules = rules if rules is not None else GateRules()

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        return self.verdict(study, trial) is not None

    def verdict(self, study: Study, trial: FrozenTrial) -> Verdict | None:
        """Why the trial should stop at its last reported step, or None to go on."""
        step = trial.last_step
        if step is None:
            return None
        if step == LRRT_STEP:
            return self.gate(study, trial)
        if self.wrapped is not None and self.wrapped.prune(study, _training_view(trial)):
            value = trial.intermediate_values[step]
            return Verdict(pruner_label(self.wrapped), f"epoch {step}",
                           {"epoch": step, "val_accuracy": round(value, 6)})
        return None

    def gate(self, study: Study, trial: FrozenTrial) -> Verdict | None:
        """The LRRT step's verdict on the trial's recorded range test (None: none recorded,
        or the design goes on), whatever steps it reported: a multi-objective study reports
        none (Optuna refuses ``report`` there), and its objective asks this directly."""
        summary = LRRTSummary.from_attrs(trial.user_attrs)
        if summary is None:
            return None
        peers = peer_scores(study, trial.number, summary, self.rules)
        verdict = lrrt_verdict(summary, peers, self.rules)
        if verdict is None and self.rules.promotion_eta > 1:
            return promotion_verdict(summary.score, range_test_scores(study, trial.number),
                                     self.rules.promotion_eta)
        return verdict


def _training_view(trial: FrozenTrial) -> FrozenTrial:
    """The trial without its LRRT step. Median/percentile pruners compare the trial's best
    intermediate value over all steps, and the LRRT score (a training accuracy) is no
    training-epoch value: left in, a good LRRT score would shield a trial whose epochs fail."""
    view = copy.copy(trial)
    view.intermediate_values = {
        step: value for step, value in trial.intermediate_values.items() if step != LRRT_STEP
    }
    return view


WrappedFactory = Callable[[int, int], BasePruner | None]
"""``(startup_trials, warmup_steps) -> pruner`` for the training epochs."""

AFTER_LRRT_PRUNERS: dict[str, WrappedFactory] = {
    "median": lambda startup, warmup: optuna.pruners.MedianPruner(
        n_startup_trials=startup, n_warmup_steps=warmup),
    "percentile": lambda startup, warmup: optuna.pruners.PercentilePruner(
        25.0, n_startup_trials=startup, n_warmup_steps=warmup),
    "successive_halving": lambda _startup, warmup: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=warmup),
    "hyperband": lambda _startup, warmup: optuna.pruners.HyperbandPruner(min_resource=warmup),
    "none": lambda _startup, _warmup: None,
}
"""The standard pruners that may judge the training epochs, by the name the YAML uses."""


def make_wrapped_pruner(
    name: str, *, startup_trials: int, warmup_epochs: int
) -> BasePruner | None:
    """The standard pruner that judges training epochs (steps >= 1)."""
    if name not in AFTER_LRRT_PRUNERS:
        raise ValueError(f"unknown pruner {name!r}")
    return AFTER_LRRT_PRUNERS[name](startup_trials, warmup_epochs + 1)  # step 0 is the LRRT
