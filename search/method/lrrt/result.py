"""A range test as it ran: its per-batch curve and its summary (``LRRTSummary``, what the
search takes from it: score, bounds from the configured rule, how far a second rule
disagrees, what the curve says), with a JSON round-trip (the full-curve artifact, the file
``cnnsearch lrrt`` writes), so a retried trial or a benchmark can re-read a test instead of
running it again."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from search.method.lrrt.bounds import apply_rule
from search.method.lrrt.curve import LRRTCurve
from search.record import UNKNOWN_GROUP, DivergencePoint, LRRTSummary

LR_FREE_RULE = "lr_free"
"""The bound rule recorded for an LR-free optimizer's test: its bounds are the optimizer's
own, and the gate judges only whether it diverged or left the weights still."""


@dataclass(frozen=True)
class LRRTResult:
    """The curve, what it was found to say (``summary``), and the size of the network."""

    curve: LRRTCurve
    summary: LRRTSummary
    n_params: int = 0

    def bounds_within(self, lr: float) -> bool:
        """Whether the test gave bounds whose upper one is at or above ``lr`` (a ramp's first
        rate: bounds under it were never measured)."""
        bounds = self.summary.bounds
        return bounds is not None and bounds[1] >= lr

    def to_json(self) -> str:
        """The curve and the summary's facts that are not read off the curve, under the
        names the artifact has always used (``best_smoothed_accuracy`` is the score)."""
        summary = self.summary
        values: dict[str, Any] = {
            "curve": asdict(self.curve),
            "best_smoothed_accuracy": summary.score,
            "best_val_accuracy": summary.best_val_accuracy or 0.0,
            **{name: getattr(summary, name) for name in _STORED},
            "n_params": self.n_params,
        }
        return json.dumps(values, allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> LRRTResult:
        """What ``to_json`` wrote, or an artifact written before the summary's group and
        class count were stored in it (they read as unknown: ``UNKNOWN_GROUP`` and 0; give
        them with ``dataclasses.replace`` before judging such a test)."""
        values = json.loads(text)
        point = values["curve"].get("divergence_point")  # absent before it was recorded
        curve = LRRTCurve(**{**values["curve"], "divergence_point": DivergencePoint.parse(point)})
        stored = {name: values[name] for name in _STORED if name in values}
        for name in ("bounds", "compare_bounds"):
            if stored.get(name) is not None:
                stored[name] = tuple(stored[name])
        stored.setdefault("group", UNKNOWN_GROUP)
        stored.setdefault("num_classes", 0)
        summary = LRRTSummary(score=values["best_smoothed_accuracy"], **stored,
                              **curve_facts(curve))
        return cls(curve, summary, int(values.get("n_params") or 0))


_STORED = ("group", "num_classes", "bound_rule", "bounds", "compare_rule", "compare_bounds",
           "disagreement", "unstable", "peak_memory_bytes", "memory_kind", "seconds")
"""The summary's facts a JSON artifact holds as they are (the rest are read off its curve,
and the score is stored as ``best_smoothed_accuracy``)."""


def curve_facts(curve: LRRTCurve) -> dict[str, Any]:
    """The summary's facts that are read off the curve (all but the score, the rules'
    bounds, and the run's memory and time). What was never measured (no epoch ended: no
    validation) is None, not 0."""
    return {
        "lr_range": (curve.lr_min, curve.lr_max),
        "best_val_accuracy": (round(max(e["val_accuracy"] for e in curve.epochs), 6)
                              if curve.epochs else None),
        "max_batch_accuracy": max(curve.accuracies, default=None),
        "max_epoch_accuracy": max((e["accuracy"] for e in curve.epochs), default=None),
        "diverged": curve.diverged,
        "divergence": curve.divergence,
        "completed_fraction": round(curve.completed_fraction, 4),
        "divergence_point": curve.divergence_point,
        "limit_found": curve.limit_found,
        "best_accuracy_lr": curve.best_accuracy_lr,
        "weight_change": curve.weight_change,
        "ramp_steps": len(curve.lrs),
        "extension": curve.extension,
    }


def summarise(
    curve: LRRTCurve,
    *,
    bound_rule: str,
    compare_rule: str | None,
    disagreement_factor: float,
    group: str = UNKNOWN_GROUP,
    num_classes: int = 0,
    peak_memory_bytes: int = 0,
    memory_kind: str = "process_rss",
    seconds: float = 0.0,
    n_params: int = 0,
    fixed_bounds: tuple[float, float] | None = None,
) -> LRRTResult:
    """Score the curve and derive bounds with the configured rule (and the cross-check).
    ``group`` and ``num_classes`` are the trial's (unknown by default: a test judged by the
    gate needs them). ``fixed_bounds``: the bounds a design trains with whatever the curve
    says (an LR-free optimizer's, ``bound_rule`` then being ``LR_FREE_RULE``)."""
    bounds = fixed_bounds if fixed_bounds is not None else apply_rule(bound_rule, curve)
    compare = apply_rule(compare_rule, curve) if compare_rule else None
    disagreement = None
    if bounds and compare:
        high, other = bounds[1], compare[1]
        disagreement = max(high, other) / min(high, other)
    summary = LRRTSummary(
        score=max(curve.settled_accuracies, default=0.0),
        group=group,
        num_classes=num_classes,
        bound_rule=bound_rule,
        bounds=bounds,
        compare_rule=compare_rule,
        compare_bounds=compare,
        disagreement=disagreement,
        unstable=disagreement is not None and disagreement > disagreement_factor,
        peak_memory_bytes=peak_memory_bytes,
        memory_kind=memory_kind,
        seconds=round(seconds, 3),
        **curve_facts(curve),
    )
    return LRRTResult(curve, summary, n_params)
