"""``model_card.html``: one trained model on one self-contained page, the pictures people
look at after a search: where the design came from, each repeat's training curves, test
accuracy with its interval, per-class accuracy, the confusion matrix and the test images it
gets most confidently wrong.

Drawn from ``model_card.json`` (``search.trained.card_data``) and the wrong images' pixels;
plotly.js, the report's style and script are inlined as in ``cnnsearch report``, and the
images are PNG data URIs, so the file opens offline and can be mailed on its own.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from search.trained.card_data import wilson_interval
from search.views.lrrt_figure import PALETTE
from search.views.report.build import PLOT_CONFIG, asset

CARD_STYLE = """
.card-summary{font-size:18px;margin:12px 0}
table.facts{border-collapse:collapse;font-size:13px;margin:8px 0 16px}
table.facts th{text-align:left;background:#f0f3f7;padding:4px 10px;font-weight:600}
table.facts td{padding:4px 10px;border-bottom:1px solid #eee}
.wrong-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(120px,1fr));gap:12px}
.wrong-grid figure{margin:0;text-align:center;font-size:12px}
.wrong-grid img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccc}
table.results.runs,table.results.per-class{width:auto;min-width:480px}
"""
HEATMAP_TEXT_CLASSES = 20
"""Up to this many classes the confusion matrix shows its counts in the cells."""


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def _figure(figure: go.Figure, div_id: str) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                          config=PLOT_CONFIG)


def _facts(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"
                   for name, value in rows)
    return f'<table class="facts">{body}</table>'


def training_figure(card: dict[str, Any]) -> go.Figure:
    """Validation accuracy and training loss per epoch, one colour per repeat (the selected
    run drawn thicker)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("validation accuracy",
                                                           "training loss"))
    for index, run in enumerate(card["runs"]):
        epochs = [point["epoch"] for point in run["history"]]
        selected = run["seed"] == card["selected_seed"]
        line = {"color": PALETTE[index % len(PALETTE)], "width": 3 if selected else 1.5}
        name = f"seed {run['seed']}" + (" (the model)" if selected else "")
        figure.add_trace(go.Scatter(x=epochs, y=[p["val_accuracy"] for p in run["history"]],
                                    mode="lines+markers", line=line, name=name,
                                    legendgroup=name), row=1, col=1)
        figure.add_trace(go.Scatter(x=epochs, y=[p["train_loss"] for p in run["history"]],
                                    mode="lines+markers", line=line, name=name,
                                    legendgroup=name, showlegend=False), row=1, col=2)
    figure.update_xaxes(title_text="epoch", dtick=1)
    figure.update_yaxes(range=[0, 1], row=1, col=1)
    figure.update_layout(template="plotly_white", height=380,
                         margin={"l": 50, "r": 20, "t": 40, "b": 40})
    return figure


def per_class_figure(card: dict[str, Any]) -> go.Figure:
    """Accuracy of each class with its Wilson interval."""
    rows = card["per_class"]
    accuracy = [row["accuracy"] or 0.0 for row in rows]
    intervals = [wilson_interval(row["correct"], row["images"]) for row in rows]
    figure = go.Figure(go.Bar(
        x=[row["class"] for row in rows], y=accuracy, marker_color=PALETTE[0],
        error_y={"type": "data", "symmetric": False,
                 "array": [high - acc for acc, (_, high) in zip(accuracy, intervals)],
                 "arrayminus": [acc - low for acc, (low, _) in zip(accuracy, intervals)]},
        hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    figure.update_layout(template="plotly_white", height=360, yaxis={"range": [0, 1],
                         "title": "accuracy"}, margin={"l": 50, "r": 20, "t": 20, "b": 80})
    return figure


def confusion_figure(card: dict[str, Any]) -> go.Figure:
    """Counts of true (rows) against predicted (columns) classes."""
    classes = card["classes"]
    show_text = len(classes) <= HEATMAP_TEXT_CLASSES
    side = max(420, min(1000, 28 * len(classes) + 200))
    figure = go.Figure(go.Heatmap(
        z=card["confusion"], x=classes, y=classes, colorscale="Blues",
        texttemplate="%{z}" if show_text else None,
        hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    figure.update_layout(template="plotly_white", height=side, width=side + 120,
                         xaxis={"title": "predicted", "type": "category"},
                         yaxis={"title": "true", "autorange": "reversed", "type": "category"},
                         margin={"l": 120, "r": 20, "t": 20, "b": 100})
    return figure


def _png_uri(pixels: np.ndarray) -> str:
    """uint8 C x H x W pixels as a PNG data URI."""
    array = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def wrong_grid(card: dict[str, Any], images: list[np.ndarray]) -> str:
    classes = card["classes"]
    cells = []
    for entry, pixels in zip(card["confidently_wrong"], images):
        true, predicted = classes[entry["label"]], classes[entry["predicted"]]
        caption = (f"#{entry['index']}: {html.escape(true)} &rarr; "
                   f"<b>{html.escape(predicted)}</b> ({100 * entry['confidence']:.1f} %)")
        alt = html.escape(f"{card['evaluated_on']} image {entry['index']}, a {true} taken "
                          f"for a {predicted}", quote=True)
        cells.append(f'<figure data-index="{entry["index"]}"><img src="{_png_uri(pixels)}" '
                     f'alt="{alt}"><figcaption>{caption}</figcaption></figure>')
    if not cells:
        return '<p class="note">No image was misclassified.</p>'
    return '<div class="wrong-grid">' + "".join(cells) + "</div>"


def _runs_table(card: dict[str, Any]) -> str:
    head = ("<tr><th>seed</th><th>final val acc</th><th>test acc</th>"
            "<th>95 % interval (Wilson)</th><th></th></tr>")
    rows = []
    for run in card["runs"]:
        interval = run.get("test_interval")
        shown = "-" if not interval else f"[{interval[0]:.4f}, {interval[1]:.4f}]"
        test = "-" if run["test_accuracy"] is None else f"{run['test_accuracy']:.4f}"
        mark = "the model" if run["seed"] == card["selected_seed"] else ""
        rows.append(f'<tr data-seed="{run["seed"]}"><td class="num">{run["seed"]}</td>'
                    f'<td class="num">{run["final_val_accuracy"]:.4f}</td>'
                    f'<td class="num">{test}</td><td class="num">{shown}</td>'
                    f"<td>{mark}</td></tr>")
    return (f'<div class="table-wrap"><table class="results runs"><thead>{head}</thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _per_class_table(card: dict[str, Any]) -> str:
    head = "".join(f'<th data-type="{kind}" title="click to sort">{name}</th>' for name, kind
                   in (("class", "text"), ("images", "num"), ("correct", "num"),
                       ("accuracy", "num")))
    rows = []
    for row in card["per_class"]:
        accuracy = row["accuracy"]
        rows.append(f'<tr><td data-value="{html.escape(row["class"], quote=True)}">'
                    f'{html.escape(row["class"])}</td>'
                    f'<td class="num" data-value="{row["images"]}">{row["images"]}</td>'
                    f'<td class="num" data-value="{row["correct"]}">{row["correct"]}</td>'
                    f'<td class="num" data-value="{"" if accuracy is None else accuracy}">'
                    f'{"-" if accuracy is None else f"{accuracy:.4f}"}</td></tr>')
    return (f'<div class="table-wrap"><table class="results sortable per-class"><thead><tr>'
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def build_model_card(card: dict[str, Any], wrong_images: list[np.ndarray]) -> str:
    """The whole HTML document; ``wrong_images`` are the pixels (uint8 C x H x W) of
    ``card["confidently_wrong"]``, in order."""
    name = html.escape(card["name"])
    provenance = card["provenance"]
    split = card["evaluated_on"]
    interval = card["interval"]
    summary = (f'{split} accuracy <b id="card-accuracy">{card["accuracy"]:.4f}</b> '
               f'({card["correct"]} of {card["images"]} images), 95 % interval '
               f'[{interval["low"]:.4f}, {interval["high"]:.4f}]')
    caveat = ("" if split == "test" else
              '<p class="note">This design was trained under dataset.split: thesis, which '
              "keeps no test split: the figures below are on the validation images that "
              "selected it, so they are optimistic.</p>")
    design = card["design"]
    bounds = provenance.get("lr_bounds") or []
    sections = [
        f'<h1>Model card: <span id="model-name">{name}</span></h1>',
        f'<p class="meta">{html.escape(card["dataset"])}, {len(card["classes"])} classes, '
        f'{"x".join(map(str, design["input_shape"]))} inputs; run seed '
        f'{card["selected_seed"]} of {len(card["runs"])} (the median by final validation '
        "accuracy)</p>",
        f'<p class="card-summary">{summary}</p>', caveat,
        '<nav><a href="#design">design</a><a href="#training">training</a>'
        '<a href="#accuracy">accuracy</a><a href="#confusion">confusion matrix</a>'
        '<a href="#wrong">confident mistakes</a></nav>',
        '<section id="design"><h2>Design and where it came from</h2>',
        _facts([
            ("design", card["name"]),
            ("study", provenance.get("study") or "-"),
            ("trial", provenance.get("trial", "-")),
            ("rank in the export", provenance.get("rank", "-")),
            ("search score (validation)", provenance.get("search_score", "-")),
            ("LR bounds (from the range test)",
             f"[{bounds[0]:.4g}, {bounds[1]:.4g}]" if len(bounds) == 2 else "-"),
            ("optimizer", design["optimizer"]), ("batch size", design["batch_size"]),
            ("schedule", design["schedule"]), ("epochs", provenance.get("epochs", "-")),
            ("seeds", ", ".join(str(s) for s in provenance.get("seeds", [])) or "-"),
            ("data seed", provenance.get("data_seed", "-")),
            ("dataset split", card["split"]),
            ("images (train / validation / test)",
             " / ".join(str(provenance.get("images", {}).get(k, "-"))
                        for k in ("train", "val", "test"))),
            ("trained", provenance.get("trained_at", "-")),
        ]),
        "<details><summary>architecture</summary><pre>"
        + html.escape(json.dumps(design, indent=2)) + "</pre></details></section>",
        '<section id="training"><h2>Training curves</h2><p class="note">Each repeat of '
        "cnnsearch train, one colour per seed; the model is the thicker line.</p>",
        _figure(training_figure(card), "training-curves"), _runs_table(card), "</section>",
        f'<section id="accuracy"><h2>Accuracy per class</h2><p class="note">On the {split} '
        f"split ({card['images']} images), with each class' Wilson 95 % interval. The "
        f"interval is the {html.escape(interval['method'])}: how precisely this many images "
        "pin the accuracy down, the model fixed; the repeats above show how training runs "
        "vary.</p>",
        _figure(per_class_figure(card), "per-class-accuracy"), _per_class_table(card),
        "</section>",
        '<section id="confusion"><h2>Confusion matrix</h2><p class="note">Rows: the true '
        "class; columns: the predicted one; the diagonal is right.</p>",
        _figure(confusion_figure(card), "confusion-matrix"), "</section>",
        '<section id="wrong"><h2>Most confidently wrong</h2><p class="note">The '
        f"{len(card['confidently_wrong'])} {split} images with the highest probability on a "
        "wrong class: true class &rarr; predicted class (probability).</p>",
        wrong_grid(card, wrong_images), "</section>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>cnnsearch model card: {name}</title>"
            f"<style>{asset('report.css')}{CARD_STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head>\n<body>\n"
            + "\n".join(part for part in sections if part)
            + f"\n<script>{asset('report.js')}</script>\n</body></html>\n")
