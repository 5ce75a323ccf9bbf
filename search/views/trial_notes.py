"""Each trial's note on its optuna-dashboard page, as Markdown: the verdict (pruned and why,
with the evidence, or its validation accuracy), what the range test found (the chance
threshold a ``chance_level`` design missed, where a test diverged, the bounds the trial
trained with), the record's flags, then the LRRT plot full width (the Artifacts card only
shows a thumbnail). The service writes it (``search.service.lrrt_artifacts``)."""

from __future__ import annotations

from optuna.trial import TrialState

from search.record import TrialRecord, flag_notes


def artifact_url(study_id: int, trial_id: int, artifact_id: str) -> str:
    """Where optuna-dashboard serves a trial's artifact."""
    return f"/artifacts/{study_id}/{trial_id}/{artifact_id}"


def note_markdown(record: TrialRecord, url: str) -> str:
    """The note's Markdown for a trial in any state (RUNNING: the range test is done)."""
    name = record.config_name
    if record.state == TrialState.PRUNED:
        lines = [f"**{name}**: pruned, reason **{record.reason}**"
                 + (f" ({record.detail})" if record.detail else "")]
    elif record.state == TrialState.COMPLETE:
        best = record.best_val_accuracy
        lines = [f"**{name}**: complete"
                 + (f", best validation accuracy **{best:.4f}**" if best is not None else "")]
    elif record.state == TrialState.FAIL:
        failed = record.failed_because.reason if record.failed_because else "error"
        lines = [f"**{name}**: failed ({failed})"]
    else:
        lines = [f"**{name}**: LR range test done"]
    lrrt = record.lrrt
    text = "LR range test"
    if lrrt is not None and lrrt.lr_range is not None:
        text += f" over [{lrrt.lr_range[0]:g}, {lrrt.lr_range[1]:g}]"
    if lrrt is not None:
        text += f": best smoothed accuracy {lrrt.score:.3f}"
        gap = record.chance_gap
        if gap is not None:
            text += f" < {gap[1]:.3f}, the chance threshold"
        point = lrrt.divergence_point
        if point is not None:
            loss = "not finite" if point.loss is None else f"{point.loss:.3g}"
            text += f", diverged at lr {point.lr:.4g} (smoothed loss {loss})"
    bounds = record.trained_bounds
    if bounds is None and record.state == TrialState.RUNNING and lrrt is not None:
        bounds = lrrt.bounds  # what it trains with, once the gate lets it through
    if bounds:
        text += f", LR bounds {bounds[0]:.4g}..{bounds[1]:.4g}"
    lines += ["", text]
    lines += [f"\n**warning** {note}" for note in flag_notes(record)]
    lines += ["", f"![LR range test of {name}]({url})", ""]
    return "\n".join(lines)
