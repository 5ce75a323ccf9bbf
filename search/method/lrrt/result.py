"""What the search takes from a range test: its score, bounds from the configured rule, and
how far a second rule disagrees. Plain data with a JSON round-trip (the full-curve artifact),
so a retried trial can reuse a test instead of running it again."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from search.method.lrrt.bounds import apply_rule
from search.method.lrrt.curve import LRRTCurve
from search.record import DivergencePoint, LRRTSummary


@dataclass
class LRRTResult:
    """The curve plus what the search needs from it: score, bounds and their agreement."""

    curve: LRRTCurve
    best_smoothed_accuracy: float
    best_val_accuracy: float
    bound_rule: str
    bounds: tuple[float, float] | None
    compare_rule: str | None = None
    compare_bounds: tuple[float, float] | None = None
    disagreement: float | None = None
    unstable: bool = False
    peak_memory_bytes: int = 0
    memory_kind: str = "process_rss"
    seconds: float = 0.0
    n_params: int = 0

    def summary(self, *, group: str, num_classes: int) -> LRRTSummary:
        """The trial record's view of the test (small, without the per-batch arrays). What
        was never measured (no epoch ended: no validation) is None, not 0."""
        curve = self.curve
        return LRRTSummary(
            score=self.best_smoothed_accuracy,
            group=group,
            num_classes=num_classes,
            lr_range=(curve.lr_min, curve.lr_max),
            best_val_accuracy=round(self.best_val_accuracy, 6) if curve.epochs else None,
            max_batch_accuracy=max(curve.accuracies, default=None),
            max_epoch_accuracy=max((e["accuracy"] for e in curve.epochs), default=None),
            diverged=curve.diverged,
            divergence=curve.divergence,
            completed_fraction=round(curve.completed_fraction, 4),
            bound_rule=self.bound_rule,
            bounds=self.bounds,
            compare_rule=self.compare_rule,
            compare_bounds=self.compare_bounds,
            disagreement=self.disagreement,
            unstable=self.unstable,
            peak_memory_bytes=self.peak_memory_bytes,
            memory_kind=self.memory_kind,
            seconds=round(self.seconds, 3),
            divergence_point=curve.divergence_point,
            limit_found=curve.limit_found,
            best_accuracy_lr=curve.best_accuracy_lr,
            weight_change=curve.weight_change,
            ramp_steps=len(curve.lrs),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> LRRTResult:
        values = json.loads(text)
        point = values["curve"].get("divergence_point")  # absent before it was recorded
        values["curve"] = LRRTCurve(**{**values["curve"],
                                       "divergence_point": DivergencePoint.parse(point)})
        for key in ("bounds", "compare_bounds"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def summarise(
    curve: LRRTCurve,
    *,
    bound_rule: str,
    compare_rule: str | None,
    disagreement_factor: float,
    peak_memory_bytes: int = 0,
    memory_kind: str = "process_rss",
    seconds: float = 0.0,
) -> LRRTResult:
    """Score the curve and derive bounds with the configured rule (and the cross-check)."""
    bounds = apply_rule(bound_rule, curve)
    compare = apply_rule(compare_rule, curve) if compare_rule else None
    disagreement = None
    if bounds and compare:
        high, other = bounds[1], compare[1]
        disagreement = max(high, other) / min(high, other)
    return LRRTResult(
        curve=curve,
        best_smoothed_accuracy=max(curve.settled_accuracies, default=0.0),
        best_val_accuracy=max((e["val_accuracy"] for e in curve.epochs), default=0.0),
        bound_rule=bound_rule,
        bounds=bounds,
        compare_rule=compare_rule,
        compare_bounds=compare,
        disagreement=disagreement,
        unstable=disagreement is not None and disagreement > disagreement_factor,
        peak_memory_bytes=peak_memory_bytes,
        memory_kind=memory_kind,
        seconds=seconds,
    )
