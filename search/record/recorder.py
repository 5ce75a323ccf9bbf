"""``TrialRecorder``, the one writer of a trial's attrs: each method stores one step of the
trial's life (``search.record.keys`` says what each key holds)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import search.record.keys as keys
from search.record.summary import CurvePoints, LRRTSummary
from search.record.trial import Verdict
from search.record.values import Bounds

if TYPE_CHECKING:
    import optuna

MAX_DEGRADED = 20
"""Most problems one trial's ``degraded`` attr lists."""


class TrialRecorder:
    """The one writer: each method stores one step of a trial's life in its user attrs."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def _set(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self.trial.set_user_attr(key, value)

    # what a retried trial inherits from the failed attempt (Optuna copies user attrs)
    def inherited_seed(self, default: int) -> int:
        return int(self.trial.user_attrs.get(keys.RUN_SEED, default))

    def inherited_checkpoint_key(self, default: str) -> str:
        return str(self.trial.user_attrs.get(keys.CHECKPOINT_KEY, default))

    def inherited_lrrt(self) -> LRRTSummary | None:
        """The range test a previous attempt of this trial already ran."""
        return LRRTSummary.from_attrs(self.trial.user_attrs)

    def started(self, *, config_name: str, run_seed: int, checkpoint_key: str, device: str,
                worker: str, trial_config: Mapping[str, Any], precision: str | None = None,
                card: str | None = None, slot: int | None = None) -> None:
        """Who runs the trial, where and on what; ``card`` and ``slot`` only when the
        process holds a slot of a GPU."""
        placed = {keys.CARD: card, keys.SLOT: slot} if card is not None else {}
        self._set({keys.CONFIG_NAME: config_name, keys.RUN_SEED: run_seed,
                   keys.CHECKPOINT_KEY: checkpoint_key, keys.DEVICE: device, keys.WORKER: worker,
                   **({keys.PRECISION: precision} if precision is not None else {}), **placed,
                   keys.TRIAL_CONFIG: dict(trial_config)})

    def range_test(self, summary: LRRTSummary, curve: CurvePoints, n_params: int) -> None:
        """The summary, flat, and a short copy of the smoothed curve (``CurvePoints
        .shortened``): the one a trial keeps when no artifact holds its curve."""
        self._set({keys.N_PARAMS: n_params, **summary.to_attrs(),
                   keys.LRRT_CURVE: curve.shortened().to_attr()})

    def range_test_reused(self) -> None:
        self._set({keys.LRRT_REUSED: True})

    def artifacts(self, *, curve_id: str | None = None, plot_id: str | None = None) -> None:
        """The artifacts' ids. The curve artifact holds the whole curve, so the attrs' copy
        is dropped (Optuna cannot delete an attr: it becomes null)."""
        values = {keys.LRRT_ARTIFACT: curve_id, keys.LRRT_PLOT_ARTIFACT: plot_id}
        self._set({key: value for key, value in values.items() if value is not None})
        if curve_id is not None and self.trial.user_attrs.get(keys.LRRT_CURVE) is not None:
            self._set({keys.LRRT_CURVE: None})

    def bounds(self, bounds: Bounds) -> None:
        self._set({keys.LR_BOUNDS: list(bounds)})

    def epochs(self, val_accuracies: list[float], lrs: list[float]) -> None:
        self._set({keys.VAL_CURVE: val_accuracies, keys.LR_CURVE: lrs})

    def resumed(self, epoch: int) -> None:
        self._set({keys.RESUMED_FROM_EPOCH: epoch})

    def pruned(self, verdict: Verdict) -> None:
        values: dict[str, Any] = {keys.PRUNE_REASON: verdict.reason}
        if verdict.detail:
            values[keys.PRUNE_DETAIL] = verdict.detail
        if verdict.evidence:
            values[keys.PRUNE_EVIDENCE] = dict(verdict.evidence)
        self._set(values)

    def failed(self, reason: str, detail: str = "") -> None:
        self._set({keys.FAIL_REASON: reason,
                   **({keys.FAIL_DETAIL: detail[:500]} if detail else {})})

    def told(self, values: tuple[float, ...]) -> None:
        """The values cnnsearch is about to tell Optuna: a trial holding others was told
        from outside (``TrialRecord.untrusted``)."""
        self._set({keys.TOLD_VALUES: [float(value) for value in values]})

    def degraded(self, problem: str) -> bool:
        """Add one problem the trial survived; False if it was already recorded, or
        ``MAX_DEGRADED`` problems already are (the attr stays small however long it trains)."""
        problems = list(self.trial.user_attrs.get(keys.DEGRADED) or [])
        problem = problem[:200]
        if problem in problems or len(problems) >= MAX_DEGRADED:
            return False
        self._set({keys.DEGRADED: [*problems, problem]})
        return True

    def seconds(self, seconds: float) -> None:
        self._set({keys.SECONDS: round(seconds, 3)})

    def repeat(self, of: int) -> None:
        """This trial sampled the design of trial ``of`` again and takes its result."""
        self._set({keys.REPEAT_OF: of})

    def bench(self, *, images: int, seconds: float, cut: bool = False) -> None:
        self._set({keys.BENCH_IMAGES: images, keys.BENCH_SECONDS: round(seconds, 3),
                   **({keys.BENCH_CUT: True} if cut else {})})
