"""``LRRTPruner``: rejects a design at the LR range test step, then defers to a standard pruner.

The verdict reads only the trial and its peers' user attrs, which live in storage, so every
worker of a distributed study reaches the same decision. The arithmetic is in module-level
functions, testable without a study.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.trial import TrialState

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial

LRRT_STEP = 0
"""The step the objective reports the LRRT score at; training epochs report from step 1."""

# User attrs the objective writes before reporting the LRRT step.
ATTR_SCORE = "lrrt_score"
ATTR_GROUP = "lrrt_group"
ATTR_NUM_CLASSES = "num_classes"
ATTR_DIVERGED = "lrrt_diverged"
ATTR_USABLE = "lrrt_completed_fraction"
ATTR_HAS_BOUNDS = "lrrt_has_bounds"
ATTR_UNSTABLE = "lrrt_unstable"
ATTR_LEARNED = "lrrt_learned"

DIVERGED = "diverged"
CHANCE_LEVEL = "chance_level"
UNSTABLE = "unstable"
BELOW_PEERS = "below_peers"


def chance_threshold(num_classes: int, margin: float) -> float:
    """Accuracy a design must beat to count as learning: ``margin`` of the way from chance
    (1/num_classes) to perfect. 10 classes, margin 0.1 -> 0.19."""
    chance = 1.0 / num_classes
    return chance + margin * (1.0 - chance)


def below_peers(score: float, peer_scores: list[float], percentile: float, margin: float) -> bool:
    """Whether ``score`` is more than ``margin`` under the peers' ``percentile``."""
    return score < float(np.percentile(peer_scores, percentile)) - margin


def pruner_label(pruner: BasePruner) -> str:
    """``MedianPruner`` -> ``median``: the reason recorded when the wrapped pruner decides."""
    name = type(pruner).__name__.removesuffix("Pruner")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class LRRTPruner(BasePruner):
    """Prunes at ``LRRT_STEP`` a trial that diverged, stayed at chance level, is unstable
    (its bound rules disagree, when asked) or scores far below its peers of the same
    {dataset, LR range} group; after that step the wrapped pruner decides.

    Args:
        wrapped: pruner for the training epochs; None never prunes them.
        chance_margin: see ``chance_threshold``.
        percentile: peers' percentile a score is compared with.
        peer_margin: absolute accuracy under that percentile that counts as "far below".
        warmup_trials: peers (that learned) needed before ``below_peers`` applies.
        prune_unstable: prune designs whose bound rules disagree beyond the factor.
        min_usable_fraction: a test that diverged before this share of its ramp is
            ``diverged`` even if its few points looked fine.
    """

    def __init__(
        self,
        wrapped: BasePruner | None = None,
        *,
        chance_margin: float = 0.1,
        percentile: float = 25.0,
        peer_margin: float = 0.02,
        warmup_trials: int = 4,
        prune_unstable: bool = False,
        min_usable_fraction: float = 0.05,
    ) -> None:
        if not 0.0 <= chance_margin < 1.0:
            raise ValueError(f"chance_margin must be in [0, 1), got {chance_margin}")
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {percentile}")
        if peer_margin < 0.0:
            raise ValueError(f"peer_margin must be >= 0, got {peer_margin}")
        if warmup_trials < 0:
            raise ValueError(f"warmup_trials must be >= 0, got {warmup_trials}")
        if not 0.0 <= min_usable_fraction < 1.0:
            raise ValueError(f"min_usable_fraction must be in [0, 1), got {min_usable_fraction}")
        self.wrapped = wrapped
        self.chance_margin = chance_margin
        self.percentile = percentile
        self.peer_margin = peer_margin
        self.warmup_trials = warmup_trials
        self.prune_unstable = prune_unstable
        self.min_usable_fraction = min_usable_fraction
        self._reasons: dict[int, str] = {}

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        if step == LRRT_STEP:
            reason = self.lrrt_verdict(study, trial)
        elif self.wrapped is not None and self.wrapped.prune(study, _training_view(trial)):
            reason = pruner_label(self.wrapped)
        else:
            reason = None
        if reason is None:
            return False
        self._reasons[trial.number] = reason
        return True

    def pop_reason(self, trial_number: int) -> str | None:
        """Why this process last pruned the trial; the objective stores it in user attrs."""
        return self._reasons.pop(trial_number, None)

    def lrrt_verdict(self, study: Study, trial: FrozenTrial) -> str | None:
        """The reason to reject the design at the LRRT step, or None to keep it."""
        attrs = trial.user_attrs
        if ATTR_SCORE not in attrs:
            return None
        score = float(attrs[ATTR_SCORE])
        learned = score >= chance_threshold(int(attrs[ATTR_NUM_CLASSES]), self.chance_margin)
        if attrs.get(ATTR_DIVERGED) and (
            not learned
            or float(attrs.get(ATTR_USABLE, 1.0)) < self.min_usable_fraction
            or not attrs.get(ATTR_HAS_BOUNDS, True)
        ):
            return DIVERGED
        if not learned:
            return CHANCE_LEVEL
        if not attrs.get(ATTR_HAS_BOUNDS, True):
            return DIVERGED
        if self.prune_unstable and attrs.get(ATTR_UNSTABLE):
            return UNSTABLE
        peers = self._peer_scores(study, trial)
        if len(peers) >= max(self.warmup_trials, 1) and below_peers(
            score, peers, self.percentile, self.peer_margin
        ):
            return BELOW_PEERS
        return None

    @staticmethod
    def _peer_scores(study: Study, trial: FrozenTrial) -> list[float]:
        group = trial.user_attrs.get(ATTR_GROUP)
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        return [
            float(other.user_attrs[ATTR_SCORE])
            for other in study.get_trials(deepcopy=False, states=states)
            if other.number != trial.number
            and other.user_attrs.get(ATTR_LEARNED)
            and other.user_attrs.get(ATTR_GROUP) == group
            and ATTR_SCORE in other.user_attrs
        ]


def _training_view(trial: FrozenTrial) -> FrozenTrial:
    """The trial without its LRRT step. Median/percentile pruners compare the trial's best
    intermediate value over all steps, and the LRRT score (a training accuracy) is no
    training-epoch value: left in, a good LRRT score would shield a trial whose epochs fail."""
    view = copy.copy(trial)
    view.intermediate_values = {
        step: value for step, value in trial.intermediate_values.items() if step != LRRT_STEP
    }
    return view


def make_wrapped_pruner(
    name: str, *, startup_trials: int, warmup_epochs: int
) -> BasePruner | None:
    """The standard pruner that judges training epochs (steps >= 1)."""
    warmup = warmup_epochs + 1  # step 0 is the LRRT
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(
            25.0, n_startup_trials=startup_trials, n_warmup_steps=warmup
        )
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup)
    if name == "none":
        return None
    raise ValueError(f"unknown pruner {name!r}")
