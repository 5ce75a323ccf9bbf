"""``cnnsearch lrrt``: one range test of one design, fixed with ``--set key=value``."""

from __future__ import annotations

import copy
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml

from search.config import SearchConfig, load_yaml, override_keys, parse_config
from search.errors import UserError
from search.method.lrrt.result import LRRTResult
from search.method.lrrt.run import run_lrrt
from search.method.prepared_data import prepare_data
from search.method.suggest import sample_trial_config
from search.method.trial_config import TrialConfig
from search.views.lrrt_figure import LRRTLine, lrrt_figure
from search.views.output_files import output_folder, write_output
from search.views.progress import RangeTestProgress


def fix_space(config: SearchConfig, assignments: list[str]) -> SearchConfig:
    """Pin space dimensions (``blocks=2``, ``lr_range=[1e-4,1e-2]``); the rest keep their
    first choice. A dotted key of another section (``train.precision=bf16``) is set as
    ``override_keys`` sets it. Values go through the same validation as the YAML."""
    dotted = [a for a in assignments
              if "." in a.partition("=")[0].strip().removeprefix("space.")]
    config = override_keys(config, dotted)
    raw = copy.deepcopy(dict(config.raw))
    space = dict(raw.get("space") or {})
    for assignment in (a for a in assignments if a not in dotted):
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got '{assignment}'")
        key = key.strip().removeprefix("space.")
        try:
            value = load_yaml(text)
        except yaml.YAMLError:
            raise UserError(f"--set {key}: cannot parse value '{text}'") from None
        if key == "lr_range" and isinstance(value, list) and value and isinstance(value[0], list):
            raise UserError("--set lr_range takes one pair, e.g. lr_range=[1e-4,1e-2]")
        space[key] = [value]
    raw["space"] = {key: ([v[0]] if isinstance(v, list) and v else v)
                    for key, v in space.items()}
    return parse_config(raw)


class _AskedNames(optuna.trial.FixedTrial):
    """A trial that answers every suggestion with its first choice and keeps the names."""

    def __init__(self) -> None:
        super().__init__({})
        self.asked: list[str] = []

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.asked.append(name)
        return choices[0]


def used_dimensions(fixed: SearchConfig) -> set[str]:
    """The space dimensions the design of ``fixed`` (one choice each, ``fix_space``) uses:
    those the sampling would suggest for it were each a real choice (its value offered twice),
    e.g. ``momentum`` for SGD only, ``depth`` for vgg only."""
    space = fixed.space
    doubled = {f.name: tuple(value) * 2 for f in fields(space)
               if (value := getattr(space, f.name)) is not None}
    trial = _AskedNames()
    sample_trial_config(trial, replace(fixed, space=replace(space, **doubled)))
    return set(trial.asked)


def single_range_test(
    config: SearchConfig, assignments: list[str], device: torch.device, out_dir: Path,
    progress: RangeTestProgress | None = None,
) -> tuple[TrialConfig, LRRTResult, Path, Path]:
    """Run the test; ``progress`` shows it as it runs and is cleared when it ends."""
    fixed = fix_space(config, assignments)
    trial_config = sample_trial_config(optuna.trial.FixedTrial({}), fixed)
    data = prepare_data(fixed, device)
    if progress is None:
        result = run_lrrt(trial_config, data)
    else:
        progress.start(trial_config.name)
        try:
            result = run_lrrt(trial_config, data, progress=progress)
        finally:
            progress.close()
    out_dir = output_folder(out_dir, "--out")
    json_path = write_output(out_dir / f"lrrt-{trial_config.name}.json", result.to_json(),
                             "--out")
    html_path = out_dir / f"lrrt-{trial_config.name}.html"
    title = (f"LR range test: {trial_config.name} on {trial_config.dataset.name}, "
             f"LR {trial_config.lr_range[0]:g}..{trial_config.lr_range[1]:g}")
    figure = lrrt_figure([LRRTLine.from_result(result, trial_config.name)], title)
    write_output(html_path, figure.to_html(include_plotlyjs=True, full_html=True), "--out")
    return trial_config, result, json_path, html_path
