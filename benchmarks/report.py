"""The benchmark's outputs: ``table.md``, ``budget_curves.html`` and ``budget_curves.png``.

The HTML is plotly, self-contained (opens offline). The PNG is drawn with matplotlib when it
is installed (plotly's own PNG export needs kaleido and a Chrome it would download); without
it the PNG is skipped with a note, and the smoke test does not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.metrics import FRACTIONS, median_curve
from benchmarks.strategy_runs import STRATEGIES

COLOURS = {"ours": "#d62728", "ours_sh": "#8c1d1d", "tpe_median": "#1f77b4",
           "tpe_hyperband": "#2ca02c", "tpe_sh": "#9467bd", "screening": "#ff7f0e",
           "random": "#7f7f7f"}
LABELS = {s.key: s.label for s in STRATEGIES}
MISSING = "-"


def _acc(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"


def _images(value: float | None, budget: int | None = None) -> str:
    if value is None:
        return MISSING
    text = f"{value / 1000:,.1f}k"
    return f"{text} ({100 * value / budget:.0f} %)" if budget else text


def _seconds(value: float | None) -> str:
    return "" if value is None else f", {value:.0f} s"


def _share(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f} %"


def runs_table(metrics: list[dict[str, Any]], target: float) -> list[str]:
    """Strategy x seed rows; '-' only where the target was not reached."""
    lines = [
        f"| strategy | seed | best val acc @25 % | @50 % | @100 % | budget to {target:g} "
        "| seconds to target | budget on chance-level trials | trials finished / pruned "
        "| images used (eval) | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in metrics:
        reached = m["to_target"][str(target)]
        cut = f" (+{m['cut']} cut)" if m["cut"] else ""
        lines.append(
            f"| {m['strategy']} | {m['seed']} | "
            + " | ".join(_acc(m["best_at"][str(f)]) for f in FRACTIONS)
            + f" | {_images(reached[0] if reached else None, m['budget'])}"
            + f" | {MISSING if not reached else f'{reached[1]:.0f}'}"
            + f" | {_images(m['chance_images'], m['budget'])}"
            + f" | {m['complete']} / {m['pruned']}{cut}"
            + f" | {_images(m['images'])} ({_images(m['eval_images'])})"
            + f" | {m['seconds']:.0f} |"
        )
    return lines


def summary_table(summary: dict[str, Any], targets: tuple[float, ...], budget: int
                  ) -> list[str]:
    head = " | ".join(f"budget (seconds) to {t:g} [seeds reaching]" for t in targets)
    lines = [f"| strategy | seeds | median best @25 % | @50 % | @100 % | {head} "
             "| median budget on chance-level trials |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(targets) + "---:|"]
    for key, s in summary["strategies"].items():
        reach = " | ".join(
            f"{_images(s['to_target_images'][str(t)], budget)}"
            f"{_seconds(s['to_target_seconds'][str(t)])} [{s['reached'][str(t)]}/"
            f"{s['seeds']}]" for t in targets)
        lines.append(f"| {key} | {s['seeds']} | "
                     + " | ".join(_acc(s["best_at"][str(f)]) for f in FRACTIONS)
                     + f" | {reach} | {_share(s['chance_share'])} |")
    return lines


def headline_lines(summary: dict[str, Any], target: float) -> list[str]:
    head = summary["headline"].get(str(target))
    if head is None:
        return ["(no headline: ours or the other strategies were not run)"]
    verdict = {True: "met", False: "not met", None: "undecided"}[head["target_met"]]
    ours = (f"ours reached it with a median of {_images(head['ours_images'])} training images"
            if head["ours_images"] is not None else "ours did not reach it (median of seeds)")
    if head["best_other_images"] is not None:
        other = (f"the best other strategy ({head['best_other']}) with "
                 f"{_images(head['best_other_images'])}")
        ratio = "" if head["ratio"] is None else f"; ratio {head['ratio']:.2f}"
    else:
        other = "no other strategy reached it within the budget (median of seeds)"
        ratio = ("" if head["ratio_below"] is None
                 else f"; ratio below {head['ratio_below']:.2f} (theirs > the whole budget)")
    return [f"Target {target:g}: {ours}; {other}{ratio}. Goal (ratio <= 0.50): "
            f"**{verdict}**."]


def write_table(path: Path, results: dict[str, Any]) -> None:
    settings = results["settings"]
    target = settings["target"]
    targets = tuple(sorted((target, *settings["extra_targets"])))
    lines = [
        f"# Search strategies benchmark ({settings['mode']} mode)",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine']}",
        "",
        f"Fashion-MNIST, {settings['train_size']} train / {settings['val_size']} val images, "
        f"{settings['epochs']} epochs per trial, batch {settings['batch_size']}, budget "
        f"{settings['budget']:,} training images per search ({settings['budget_trials']:g} "
        f"full fixed-LR trials), seeds {settings['seeds']}, target {target:g}.",
        "",
        *headline_lines(results["summary"], target),
        "",
        "## Strategy x seed",
        "",
        *runs_table(results["metrics"], target),
        "",
        "## Medians across seeds",
        "",
        *summary_table(results["summary"], targets, settings["budget"]),
        "",
    ]
    path.write_text("\n".join(lines))


def _curves(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per strategy: per-seed step curves and the median across seeds, in %."""
    budget = results["settings"]["budget"]
    curves = []
    for key in LABELS:
        runs = [r for r in results["runs"] if r["strategy"] == key]
        if not runs:
            continue
        seeds = []
        for run in runs:
            xs = [0.0] + [100 * p[0] / budget for p in run["timeline"]] + [100.0]
            ys = [None] + [p[2] for p in run["timeline"]]
            ys.append(ys[-1])
            seeds.append((run["seed"], xs, ys))
        mx, my = median_curve(runs, budget)
        curves.append({"key": key, "seeds": seeds, "median": ([100 * x / budget for x in mx],
                                                              my)})
    return curves


def _y_range(curves: list[dict[str, Any]]) -> tuple[float, float]:
    values = [y for c in curves for _s, _x, ys in c["seeds"] for y in ys if y is not None]
    if not values:
        return 0.0, 1.0
    return max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.02)


def write_html(path: Path, results: dict[str, Any]) -> None:
    import plotly.graph_objects as go

    curves = _curves(results)
    figure = go.Figure()
    for curve in curves:
        key, colour = curve["key"], COLOURS[curve["key"]]
        for seed, xs, ys in curve["seeds"]:
            figure.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", line={"color": colour, "width": 1, "shape": "hv"},
                opacity=0.35, name=f"{key} seed {seed}", legendgroup=key, showlegend=False))
        figure.add_trace(go.Scatter(
            x=curve["median"][0], y=curve["median"][1], mode="lines", legendgroup=key,
            line={"color": colour, "width": 3, "shape": "hv"},
            name=f"{LABELS[key]} (median of seeds)"))
    target = results["settings"]["target"]
    figure.add_hline(y=target, line={"dash": "dash", "color": "black"},
                     annotation_text=f"target {target:g}")
    figure.update_layout(
        title=f"Best validation accuracy so far against training budget "
              f"({results['settings']['mode']} mode, Fashion-MNIST)",
        xaxis_title=f"training budget used, % of {results['settings']['budget']:,} images",
        yaxis_title="best validation accuracy so far", yaxis_range=list(_y_range(curves)),
        template="plotly_white", legend={"orientation": "h", "y": -0.2})
    figure.write_html(path, include_plotlyjs=True, full_html=True)


def write_png(path: Path, results: dict[str, Any]) -> bool:
    """The same plot as a PNG for BENCHMARKS.md, whole range and a zoom on the top (where
    the strategies differ); False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return False
    curves = _curves(results)
    target = results["settings"]["target"]
    low, high = _y_range(curves)
    figure, panels = pyplot.subplots(1, 2, figsize=(14, 5.5), dpi=110)
    for axes, (bottom, title) in zip(panels, ((low, "whole range"),
                                              (max(low, target - 0.1), "zoom on the top"))):
        for curve in curves:
            key, colour = curve["key"], COLOURS[curve["key"]]
            for _seed, xs, ys in curve["seeds"]:
                axes.step(xs, [float("nan") if y is None else y for y in ys], where="post",
                          color=colour, alpha=0.25, linewidth=1)
            axes.step(curve["median"][0], [float("nan") if y is None else y
                                           for y in curve["median"][1]],
                      where="post", color=colour, linewidth=2.5, label=LABELS[key])
        axes.axhline(target, color="black", linestyle="--", linewidth=1,
                     label=f"target {target:g}")
        axes.set_ylim(bottom, high)
        axes.set_xlim(0, 100)
        axes.set_xlabel(f"training budget used, % of {results['settings']['budget']:,} images")
        axes.set_ylabel("best validation accuracy so far")
        axes.set_title(f"Median of seeds (thick), each seed (thin): {title}")
        axes.grid(alpha=0.3)
    panels[1].legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return True
