"""The one LRRT figure: lines read from trial records or a fresh range test, drawn by plotly
(report, ``cnnsearch lrrt``) and by matplotlib (the dashboard's SVG) from the same data."""

from __future__ import annotations

import math

import pytest
from matplotlib.colors import to_hex
from optuna.trial import TrialState, create_trial

from search.record import CurvePoints, DivergencePoint, LRRTSummary, TrialRecord
from search.views.lrrt_figure import (
    MAX_POINTS,
    PALETTE,
    PRUNED_COLOR,
    LRRTLine,
    line_styles,
    loss_ceiling,
    lrrt_figure,
    lrrt_matplotlib,
)
from tests.search.views.test_lrrt_artifact import make_result


def record(number: int, name: str, *, pruned: str | None = None,
           bounds: list[float] | None = None, losses: list[float] | None = None) -> TrialRecord:
    lrs = [1e-4 * (i + 1) for i in range(10)]
    attrs = {"config_name": name,
             "lrrt_curve": {"lr": lrs, "accuracy": [0.05 * i for i in range(10)],
                            "loss": losses or [2.3 - 0.1 * i for i in range(10)]}}
    if bounds:
        attrs["lr_bounds"] = bounds
    if pruned:
        attrs["prune_reason"] = pruned
    trial = create_trial(state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                         value=None if pruned else 0.5, user_attrs=attrs)
    trial.number = number
    return TrialRecord.from_frozen(trial)


def group_lines() -> list[LRRTLine]:
    return [LRRTLine.from_record(r) for r in (
        record(0, "B2FL8Adam", bounds=[2e-4, 6e-4]),
        record(1, "<b>B3</b> & co", pruned="chance_level", bounds=[1e-4, 2e-4]),
        record(2, "B2FL32SGD", bounds=[3e-4, 9e-4]),
    )]


def test_lines_read_from_records() -> None:
    survivor, pruned, _ = group_lines()
    assert (survivor.label, survivor.legend) == ("#0 B2FL8Adam", "#0 B2FL8Adam - complete")
    assert survivor.bounds == (2e-4, 6e-4) and survivor.raw is None
    assert pruned.pruned and pruned.bounds is None  # never trained: no bounds drawn
    assert pruned.legend == "#1 <b>B3</b> & co - pruned: chance_level"
    assert LRRTLine.from_record(TrialRecord.from_frozen(
        create_trial(state=TrialState.RUNNING, user_attrs={"config_name": "x"}))) is None


def test_line_from_a_result_is_thinned_and_keeps_batches_validation_and_bounds() -> None:
    line = LRRTLine.from_result(make_result(steps=3000, diverge=True), "B2FL8Adam")
    assert len(line.curve.lr) == len(line.raw.lr) == MAX_POINTS
    assert line.raw.lr[0] == pytest.approx(1e-4) and line.raw.lr[-1] == pytest.approx(1e-2)
    assert line.raw.loss[-1] is None  # NaN: a gap, not a number
    assert all(v is None or math.isfinite(v) for v in line.curve.loss)
    assert line.validation == CurvePoints((pytest.approx(line.validation.lr[0]),), (0.45,),
                                          (1.8,))
    assert line.bounds == (0.001, 0.004) and len(line.bound_markers) == 2


def test_survivors_take_the_palette_and_pruned_designs_are_grey_and_dashed() -> None:
    styles = line_styles(group_lines())
    assert [s.color for s in styles] == [PALETTE[0], PRUNED_COLOR, PALETTE[1]]
    assert [s.dashed for s in styles] == [False, True, False]


def test_loss_ceiling_cuts_a_blow_up_at_twice_the_start() -> None:
    calm = group_lines()[0]
    assert loss_ceiling([calm]) == pytest.approx(2.3 * 1.05)
    blown = LRRTLine.from_record(record(3, "x", losses=[2.0] * 9 + [900.0]))
    assert loss_ceiling([calm, blown]) == pytest.approx(2 * 2.3 * 1.05)
    assert loss_ceiling([]) is None


def test_plotly_traces_styles_and_escaped_names() -> None:
    figure = lrrt_figure(group_lines(), "cifar10 <i>")
    lines = [t for t in figure.data if t.mode == "lines"]
    assert len(lines) == 6 and [t.xaxis for t in lines] == ["x", "x2"] * 3
    assert [t.showlegend for t in lines] == [True, False] * 3
    pruned = lines[2]
    assert (pruned.line.color, pruned.line.dash) == (PRUNED_COLOR, "dash")
    assert pruned.name == "#1 &lt;b&gt;B3&lt;/b&gt; &amp; co - pruned: chance_level"
    assert "&lt;b&gt;" in pruned.hovertemplate and "<b>B3" not in pruned.hovertemplate
    markers = [t for t in figure.data if t.mode == "markers"]
    assert [tuple(t.x) for t in markers] == [(2e-4, 6e-4), (3e-4, 9e-4)]  # survivors only
    assert figure.layout.title.text == "cifar10 &lt;i&gt;"
    assert tuple(figure.layout.yaxis2.range) == pytest.approx((0, 2.3 * 1.05))
    assert [b.label for b in figure.layout.updatemenus[0].buttons] == ["linear LR", "log LR"]


def test_a_fresh_range_test_draws_batches_and_validation_in_plotly() -> None:
    figure = lrrt_figure([LRRTLine.from_result(make_result(), "B2FL8Adam")], "t")
    names = [t.name for t in figure.data]
    assert names.count("per batch") == 2 and names.count("validation (epoch end)") == 2


def test_the_same_data_drives_plotly_and_matplotlib() -> None:
    lines = [*group_lines(), LRRTLine.from_result(make_result(), "fresh")]
    plotly_figure = lrrt_figure(lines, "group")
    static = lrrt_matplotlib(lines, "group")
    accuracy_axes, loss_axes = static.axes

    def drawn(gid: str):
        return next(a for axes in static.axes for a in axes.lines if a.get_gid() == gid)

    smoothed = [t for t in plotly_figure.data if t.mode == "lines" and t.name != "per batch"]
    for index, line in enumerate(lines):
        for column, key in enumerate(("accuracy", "loss")):
            trace, artist = smoothed[2 * index + column], drawn(f"line{index}-{key}")
            assert to_hex(artist.get_color()) == trace.line.color
            assert (artist.get_linestyle() == "--") == (trace.line.dash == "dash")
            assert list(artist.get_xdata()) == pytest.approx(list(trace.x))
            assert [None if math.isnan(v) else v for v in artist.get_ydata()] == \
                pytest.approx(list(trace.y))
        if line.bound_markers:
            ticks = [t for t in plotly_figure.data if t.mode == "markers"
                     and t.legendgroup == f"line-{index}" and "LR bound" in t.hovertemplate]
            assert list(drawn(f"line{index}-bounds").get_xdata()) == list(ticks[0].x)
    assert loss_axes.get_ylim()[1] == pytest.approx(plotly_figure.layout.yaxis2.range[1])
    legend = [text.get_text() for text in static.legends[0].get_texts()]
    assert {line.legend for line in lines} <= set(legend)  # raw text, not html-escaped
    assert "#0 B2FL8Adam: LR bounds 0.0002..0.0006" in legend


def judged(number: int, *, lr_range: tuple[float, float] = (1e-4, 1e-3),
           state: TrialState = TrialState.PRUNED, epochs: int = 0,
           **attrs: object) -> TrialRecord:
    """A trial with a recorded range test (10 classes), its curve, and ``attrs``; a pruned
    one stopped at the LRRT step unless it reported ``epochs`` training epochs."""
    summary = LRRTSummary(score=0.141, group="g", num_classes=10, lr_range=lr_range,
                          **attrs.pop("summary", {}))  # type: ignore[arg-type]
    lrs = [lr_range[0] + (lr_range[1] - lr_range[0]) * i / 9 for i in range(10)]
    values = {"config_name": f"D{number}", "trial_config": {"lr_range": list(lr_range)},
              **summary.to_attrs(),
              "lrrt_curve": {"lr": lrs, "accuracy": [0.1 + 0.004 * i for i in range(10)],
                             "loss": [2.3] * 10}, **attrs}
    trial = create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None,
                         user_attrs=values,
                         intermediate_values={0: 0.141, **{e: 0.1 for e in range(1, epochs + 1)}})
    trial.number = number
    return TrialRecord.from_frozen(trial)


def test_a_divergence_is_a_marker_clipped_to_the_ceiling_with_its_value_in_the_text() -> None:
    point = DivergencePoint(73, 0.0826, 94.6)
    diverged = LRRTLine.from_record(judged(
        0, lr_range=(0.01, 0.1), prune_reason="diverged",
        summary={"diverged": True, "divergence_point": point}))
    assert diverged.divergence == point
    ceiling = loss_ceiling([diverged])
    assert diverged.divergence_marker(ceiling) == (0.0826, pytest.approx(2.3))  # the top
    assert diverged.divergence_text == "diverged at lr 0.0826: smoothed loss 94.6"
    lines = [diverged, group_lines()[0]]
    figure = lrrt_figure(lines, "g")
    (cross,) = [t for t in figure.data if t.name == "diverged"]
    assert (cross.xaxis, tuple(cross.x)) == ("x2", (0.0826,))
    assert cross.y[0] == pytest.approx(loss_ceiling(lines) / 1.05)
    assert cross.y[0] < figure.layout.yaxis2.range[1]  # inside the plot
    assert "smoothed loss 94.6" in cross.hovertemplate
    static = lrrt_matplotlib(lines, "g")
    (drawn,) = [a for a in static.axes[1].lines if a.get_gid() == "line0-divergence"]
    assert list(drawn.get_xdata()) == list(cross.x)
    assert list(drawn.get_ydata()) == pytest.approx(list(cross.y))
    legend = [text.get_text() for text in static.legends[0].get_texts()]
    assert "#0 D0: diverged at lr 0.0826: smoothed loss 94.6" in legend
    # a non-finite loss sits at the top too
    blown = LRRTLine(label="x", curve=diverged.curve,
                     divergence=DivergencePoint(5, 0.05, None))
    assert blown.divergence_marker(3.15) == (0.05, pytest.approx(3.0))
    assert blown.divergence_text == "diverged at lr 0.05: smoothed loss not finite"


def test_a_chance_level_design_shows_the_threshold_it_missed() -> None:
    evidence = {"score": 0.141, "threshold": 0.2}
    missed = LRRTLine.from_record(judged(1, prune_reason="chance_level",
                                         prune_evidence=evidence))
    assert missed.threshold == 0.2
    old = LRRTLine.from_record(judged(2, prune_reason="chance_level"))  # no evidence
    assert old.threshold == pytest.approx(0.19)  # 1/10 + 0.1 * (1 - 1/10)
    other = LRRTLine.from_record(judged(3, prune_reason="below_peers"))
    assert other.threshold is None
    lines = [missed, old, other]
    figure = lrrt_figure(lines, "g")
    levels = [t for t in figure.data if t.name == "chance threshold"]
    assert [tuple(t.y) for t in levels] == [(0.2, 0.2), (pytest.approx(0.19),) * 2]
    assert [tuple(t.x) for t in levels] == [(1e-4, 1e-3)] * 2  # across the tested range
    assert all(t.xaxis == "x" for t in levels)  # the accuracy panel
    assert "chance threshold 0.200" in levels[0].hovertemplate
    static = lrrt_matplotlib(lines, "g")
    drawn = [a for a in static.axes[0].lines if a.get_gid() in ("line0-threshold",
                                                                "line1-threshold")]
    assert [tuple(a.get_ydata()) for a in drawn] == [(0.2, 0.2), (pytest.approx(0.19),) * 2]
    legend = [text.get_text() for text in static.legends[0].get_texts()]
    assert "#1 D1: chance threshold 0.200" in legend


def test_bounds_are_drawn_only_inside_the_tested_range_and_only_when_trained_with() -> None:
    survivor = LRRTLine.from_record(judged(0, lr_range=(0.01, 0.1), state=TrialState.COMPLETE,
                                           lr_bounds=[0.0025, 0.01]))
    assert survivor.bounds == (0.0025, 0.01)  # what it trained with
    assert [lr for lr, _ in survivor.bound_markers] == [0.01]  # 0.0025 is off the range
    figure = lrrt_figure([survivor], "g")
    ticks = [t for t in figure.data if t.hovertemplate and "LR bound" in t.hovertemplate]
    assert [tuple(t.x) for t in ticks] == [(0.01,)]
    rejected = LRRTLine.from_record(judged(1, lr_range=(0.01, 0.1), prune_reason="chance_level",
                                           summary={"bounds": (0.0025, 0.01)}))
    assert rejected.bounds is None and rejected.bound_markers == []
    # pruned by the training pruner after an epoch: it did train with its bounds
    median = LRRTLine.from_record(judged(2, epochs=2, prune_reason="median",
                                         lr_bounds=[2e-4, 8e-4]))
    assert median.bounds == (2e-4, 8e-4) and len(median.bound_markers) == 2
