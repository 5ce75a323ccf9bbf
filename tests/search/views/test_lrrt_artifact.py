"""The LRRT plot as an SVG (what the artifact and the dashboard note show), and the JSON
artifact read back."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path

from search.method.lrrt.curve import LRRTCurve
from search.method.lrrt.result import LRRTResult, curve_facts
from search.record import CurvePoints, DivergencePoint, LRRTSummary
from search.views.lrrt_artifact import result_svg
from search.views.lrrt_figure import LRRTLine, lrrt_svg

SVG = "{http://www.w3.org/2000/svg}"


def make_result(steps: int = 50, diverge: bool = False) -> LRRTResult:
    lrs = [1e-4 + (1e-2 - 1e-4) * i / (steps - 1) for i in range(steps)]
    accuracies = [min(0.9, 0.1 + 0.8 * i / steps) for i in range(steps)]
    losses = [2.3 - 1.5 * i / steps for i in range(steps)]
    if diverge:
        losses[-3:] = [50.0, math.inf, math.nan]
    curve = LRRTCurve(lr_min=1e-4, lr_max=1e-2, steps_per_epoch=steps // 2, total_steps=steps,
                      sma_periods=5, lrs=lrs, losses=losses, accuracies=accuracies,
                      epochs=[{"epoch": 1, "step": steps // 2, "lr": lrs[steps // 2 - 1],
                               "loss": 1.9, "accuracy": 0.4, "val_loss": 1.8,
                               "val_accuracy": 0.45}],
                      diverged=diverge, divergence="non-finite loss" if diverge else None)
    return LRRTResult(curve, LRRTSummary(
        score=0.8, group="g", num_classes=10, **{
            **curve_facts(curve), "bound_rule": "smith_quarter", "bounds": (0.001, 0.004),
            "compare_rule": "accuracy_rise", "compare_bounds": (0.0005, 0.005)}))


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def texts(root: ElementTree.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def group(root: ElementTree.Element, gid: str) -> ElementTree.Element | None:
    return next((g for g in root.iter(f"{SVG}g") if g.get("id") == gid), None)


def test_svg_draws_both_panels_text_as_text_with_the_bounds_and_validation() -> None:
    svg = result_svg(make_result(), "B2FL8Adam", 3)
    assert svg.startswith("<svg")  # served as is by optuna-dashboard
    root = parse(svg)
    assert root.tag == f"{SVG}svg" and root.get("width") == "720pt"  # 960 px in a browser
    words = texts(root)
    assert "B2FL8Adam: LR range test" in words
    assert any(w.startswith("trial 3 - LR 0.0001..0.01 - best smoothed") for w in words)
    assert {"smoothed accuracy", "smoothed loss", "accuracy", "loss"} <= set(words)
    assert words.count("learning rate") == 2  # one per axes
    assert {"B2FL8Adam", "per batch", "validation (epoch end)",
            "LR bounds 0.001..0.004"} <= set(words)  # the legend
    for gid in ("line0-accuracy", "line0-loss", "line0-raw-accuracy", "line0-raw-loss",
                "line0-validation-accuracy", "line0-validation-loss", "line0-bounds"):
        assert group(root, gid) is not None, gid
    ticks = [path.get("d").split() for path in group(root, "line0-bounds").iter(f"{SVG}path")]
    assert all(d[0] == "M" and d[3] == "L" and d[1] == d[4] for d in ticks)  # vertical
    assert len({d[1] for d in ticks}) == 2  # one tick per bound


def test_long_curves_are_thinned_and_the_file_stays_small() -> None:
    svg = result_svg(make_result(steps=5000), "B2FL8Adam")
    path = group(parse(svg), "line0-raw-loss").find(f"{SVG}path")
    assert path.get("d").count("L") <= 400
    assert len(svg) < 120_000


def test_non_finite_values_break_the_line_instead_of_breaking_the_file() -> None:
    svg = result_svg(make_result(diverge=True), "diverged")
    words = texts(parse(svg))
    assert any(w.endswith("diverged: non-finite loss") for w in words)
    assert "nan" not in svg.lower().replace("nan-", "") and "inf" not in svg.lower()


def test_escapes_text_and_survives_an_empty_curve() -> None:
    empty = LRRTLine(label="a <b> & c $x$", curve=CurvePoints((), (), ()), bounds=(0.1, 0.2))
    svg = lrrt_svg([empty], "a <b> & c", "x < y")
    assert "a &lt;b&gt; &amp; c" in svg
    words = texts(parse(svg))
    assert {"a <b> & c", "x < y"} <= set(words)  # title and subtitle
    assert "a <b> & c $x$" in words  # legend: no TeX, no tags
    parse(lrrt_svg([], "nothing yet"))


# ------------------------------------------------------------------ the divergence's evidence

def test_a_divergence_keeps_the_batch_that_triggered_it_through_json_summary_and_svg(
    tiny_data, tiny_model,
) -> None:
    """The curve is cut at the divergence step, so the batch whose smoothed loss triggered
    the verdict is not on it: its step, LR and loss are kept beside it, and drawn."""
    from search.method.lrrt.result import summarise
    from search.method.lrrt.run import run_range_test
    from search.method.optimizers import make_optimizer

    train, val = tiny_data(n_train=96, batch_size=8)
    model = tiny_model()
    curve, _ = run_range_test(model, make_optimizer(model, "sgd", 1.0), train, val,
                              lr_range=(1.0, 1e4), epochs=4, sma_periods=2,
                              divergence_factor=4.0)
    assert curve.diverged
    point = curve.divergence_point
    assert point is not None and point.step == len(curve.lrs)  # cut right before it
    assert point.lr > curve.lrs[-1] and curve.lr_min <= point.lr <= curve.lr_max
    assert f"at step {point.step} (lr {point.lr:.3g})" in curve.divergence
    if curve.divergence.startswith("smoothed loss"):
        assert curve.divergence.startswith(f"smoothed loss {point.loss:.3g} >")
        assert point.loss > max(curve.smoothed_losses)  # off the stored curve
    else:
        assert point.loss is None  # a non-finite loss

    result = summarise(curve, bound_rule="smith_quarter", compare_rule=None,
                       disagreement_factor=10.0)
    assert LRRTResult.from_json(result.to_json()).curve.divergence_point == point
    summary = replace(result.summary, group="g", num_classes=4)
    assert summary.divergence_point == point and summary.limit_found is True
    assert LRRTSummary.from_attrs(summary.to_attrs()).divergence_point == point

    root = parse(result_svg(result, "B1", 0))
    cross = group(root, "line0-divergence")
    assert cross is not None
    assert any(w.startswith(f"diverged at lr {point.lr:.3g}: smoothed loss") for w in texts(root))


def test_an_older_json_artifact_has_no_divergence_point() -> None:
    old = json.loads(make_result(diverge=True).to_json())
    del old["curve"]["divergence_point"]
    assert LRRTResult.from_json(json.dumps(old)).curve.divergence_point is None


def test_an_older_summary_reads_its_divergence_point_from_the_text() -> None:
    attrs = LRRTSummary(score=0.3, group="g", num_classes=10, diverged=True,
                        divergence="smoothed loss 94.6 > 4x minimum at step 73 (lr 0.0826)"
                        ).to_attrs()
    del attrs["lrrt_divergence_point"]
    assert LRRTSummary.from_attrs(attrs).divergence_point == DivergencePoint(73, 0.0826, 94.6)


# --------------------------------------------------------------- the gate's verdict in the SVG


def test_a_survivors_plot_still_shows_its_bounds(tmp_path: Path) -> None:
    assert group(parse(result_svg(make_result(), "B1", 0, None)), "line0-bounds") is not None


# ----------------------------------------------------------- the curve lives in the artifact

