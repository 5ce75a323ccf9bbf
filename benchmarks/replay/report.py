"""A search-efficiency summary as ``table.md`` and ``curves.png`` (median best-so-far
against the share of the budget spent, with the runs' 5-95 % band), for the replay and
the live benchmark alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MISSING = "-"


def _k(value: float | None) -> str:
    return MISSING if value is None else f"{value / 1000:,.0f}k"


def _interval(entry: dict[str, Any], show: Any = _k) -> str:
    return (f"{show(entry['median'])} [{show(entry['low'])}, {show(entry['high'])}]"
            if entry.get("n") else MISSING)


def _acc(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def table_lines(summary: dict[str, Any], title: str) -> list[str]:
    strategies = summary["strategies"]
    targets = list(next(iter(strategies.values()))["to_target"]) if strategies else []
    labels = summary.get("labels", {})
    lines = [f"# {title}", "", f"`{summary.get('command', '')}`", "",
             "Targets per data seed: " + "; ".join(
                 f"{seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items())
                 for seed, values in summary.get("targets", {}).items()), "",
             "| strategy | runs | " + " | ".join(f"images to {t} (reached)" for t in targets)
             + " | area under best-so-far | best at budget | chance-level share "
             "| trials | rejected at the LRRT |",
             "|---|---:|" + "---:|" * (len(targets) + 5)]
    for key, entry in strategies.items():
        lines.append(
            f"| {key} | {entry['runs']} | "
            + " | ".join(f"{_interval(entry['to_target'][t])} ({entry['to_target'][t]['reached']})"
                         for t in targets)
            + f" | {_interval(entry['auc'], _acc)} | {_interval(entry['best'], _acc)}"
            + f" | {100 * entry['chance_share']:.1f} % | {entry['trials']:g}"
            + f" | {entry['rejected_at_lrrt']:g} |")
    lines += ["", "Ours over the best fair baseline (median images to the target, 90 % "
              "bootstrap interval; an interval containing 1 is no difference):", ""]
    for target, entries in summary.get("headline", {}).items():
        for ours, found in entries.items():
            ratio = found["ratio"]
            lines.append(f"- {target}, {ours} / {found['best_fair_baseline']}: "
                         f"{MISSING if ratio is None else f'{ratio:.2f}'} "
                         f"[{_acc(found['low'])}, {_acc(found['high'])}]")
    if summary.get("agreement"):
        lines += ["", "| strategy | live best at budget | replay 5-95 % | live area | "
                  "replay 5-95 % | agrees |", "|---|---|---|---|---|---|"]
        for key, entry in summary["agreement"].items():
            lines.append(
                f"| {key} | {', '.join(_acc(v) for v in entry['best']['live'])} | "
                f"{_acc(entry['best']['replay_range'][0])}-{_acc(entry['best']['replay_range'][1])}"
                f" | {', '.join(_acc(v) for v in entry['auc']['live'])} | "
                f"{_acc(entry['auc']['replay_range'][0])}-{_acc(entry['auc']['replay_range'][1])}"
                f" | {'yes' if entry['agrees'] else 'no'} |")
    if labels:
        lines += ["", *[f"- `{k}`: {v}" for k, v in labels.items()]]
    return lines


def write_png(path: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for key, entry in summary["strategies"].items():
        curve = entry["median_curve"]
        xs = [i / (len(curve) - 1) for i in range(len(curve))]
        line, = axes.plot(xs, curve, label=key, linewidth=2.2 if key.startswith("ours") else 1.2)
        axes.fill_between(xs, entry["curve_low"], entry["curve_high"], alpha=0.08,
                          color=line.get_color())
    values = [v for e in summary["strategies"].values() for v in e["median_curve"] if v > 0]
    if values:
        axes.set_ylim(max(0.0, min(values) - 0.02), max(values) + 0.01)
    axes.set_xlabel("share of the budget (training images)")
    axes.set_ylabel("best validation accuracy so far (median)")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(out: Path, summary: dict[str, Any], title: str) -> None:
    (out / "table.md").write_text("\n".join(table_lines(summary, title)) + "\n")
    if summary["strategies"]:
        write_png(out / "curves.png", summary)
