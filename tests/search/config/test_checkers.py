"""Every config key and every command-line flag at its bounds: the boundary values pass, the
values just outside (and the usual suspects: NaN, a newline, a bidi control, an undecodable
byte) are refused by the real CLI with one line and exit code 2, no traceback, the study
unchanged.

The cases are derived from the checkers themselves (each keeps its bounds: ``low``,
``high``, ``max_length``, ``options``), so a key or flag added later is covered without a
new table; one whose checker says nothing about its bounds must be listed in ``MANUAL`` or
``MANUAL_FLAGS``, or ``test_every_key_and_flag_has_cases`` fails. Refused values go through
``search.cli.main`` in this process (the command's own code, with no process start-up per
case, so the whole table runs in seconds); a sample goes through real processes too.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from search.cli import main
from search.cli.parser import build_parser
from search.config import parse_config
from search.config.checkers import cpu_count
from search.config.settings import SearchConfig, config_keys
from search.errors import UserError
from search.method.lrrt.bounds import BOUND_RULES
from search.service.study import open_search_study
from tests.conftest import ROOT, run_cli, tiny_config, write_config
from tests.search.test_cli import snapshot

INF, NAN = float("inf"), float("nan")
LEGACY_EXPORT = ROOT / "tests" / "fixtures" / "legacy_study" / "export.json"


# --------------------------------------------------------------------------- the cases
@dataclass
class Cases:
    accept: list[Any]
    refuse: list[Any]


TINY = sys.float_info.min
"""The smallest positive *normal* float: the smallest value above an open bound of 0 that
stays itself in every process. A subnormal (5e-324) reads as 0.0 once a library has set the
CPU's flush-to-zero mode, as one imported by earlier tests in a full run does."""


def _above(low: float) -> float:
    return TINY if low == 0 else math.nextafter(low, INF)


def _below(low: float) -> float:
    return -TINY if low == 0 else math.nextafter(low, -INF)


def _number_cases(check: Any) -> Cases:
    low, high = check.low, check.high
    accept = [_above(low) if check.open_low else low,
              math.nextafter(high, -INF) if check.open_high else high]
    refuse = [low if check.open_low else _below(low),
              high if check.open_high else math.nextafter(high, INF), NAN, INF, -INF, True,
              "1"]
    return Cases(accept, refuse)


def cases_of(check: Any) -> Cases | None:
    """Boundary and just-outside values of a checker, from the bounds it keeps; None for a
    checker that keeps none (listed in ``MANUAL``)."""
    if hasattr(check, "inner"):  # optional(...)
        inner = cases_of(check.inner)
        return None if inner is None else Cases([None, *inner.accept], inner.refuse)
    if hasattr(check, "item"):  # a space dimension: a list of choices
        item = cases_of(check.item)
        if item is None:
            return None
        refuse = [[value] for value in item.refuse] + [[], [item.accept[0]] * 2]
        distinct = list(dict.fromkeys(v.lower() if isinstance(v, str) else v
                                      for v in item.accept))
        return Cases([[value] for value in item.accept] + [distinct], refuse)
    if hasattr(check, "open_low"):
        return _number_cases(check)
    if hasattr(check, "low"):
        return Cases([check.low, check.high],
                     [check.low - 1, check.high + 1, float(check.low), True, "1"])
    if hasattr(check, "max_length"):
        empty = ["", " "]
        return Cases(["x", "é" * check.max_length] + empty * check.empty,
                     ["x" * (check.max_length + 1), "a\nb", "a\u202eb", "nul\x00", 5, ["x"]]
                     + empty * (not check.empty))
    if hasattr(check, "options"):
        options = list(check.options)
        return Cases(options + [str(options[0]).upper()] * isinstance(options[0], str),
                     ["", "x", f"{options[0]}x", 1.5, [options[0]]])
    if getattr(check, "__name__", "") == "boolean":
        return Cases([True, False], ["true", 1, 0, None])
    return None


MANUAL: dict[str, Cases] = {
    "dataset.name": Cases(["fashion-mnist", "imagefolder:/data/pets"],
                          ["", "evil", "imagefolder:", "imagefolder: ", "a\nb", 5]),
    "lrrt.bound_rule": Cases(sorted(BOUND_RULES), ["", "x", None, 3]),
    "train.compile": Cases(["off", "default", "reduce-overhead", False, True],
                           ["", "on", "max-autotune", None, 3, "OFF\n"]),
    "lrrt.compare_rule": Cases([None, *sorted(set(BOUND_RULES) - {"thesis_first_epoch"})],
                               ["", "x", 3, "thesis_first_epoch"]),
    "space.lr_range": Cases([[[TINY, 10.0]], [[1e-4, 1e-2], [1e-2, 1e-1]]],
                            [[[0.0, 1.0]], [[1e-3, math.nextafter(10.0, INF)]],
                             [[1e-2, 1e-3]], [[1e-3, 1e-3]], [[1e-3]], [[NAN, 1.0]],
                             [[1e-3, INF]], [], [[1e-4, 1e-2]] * 2, "x"]),
    "space.fc_units": Cases([["thesis"], [1], [65536], ["thesis", 1]],
                            [[0], [65537], ["x"], [1.5], [True], [None], []]),
    "space.batch_norm": Cases([[True], [False], ["none"], ["before"], ["AFTER"]],
                              [["x"], [5], [None], [], [True, True]]),
    "train.decay.milestones": Cases([[1], [100000], list(range(1, 101))],
                                    [[], [0], [100001], [2, 1], [1, 1],
                                     list(range(1, 102)), ["1"], [1.5]]),
    # Each below 1; a folder's two together leave 5 % to train on (a rule across both).
    "dataset.val_fraction": Cases([None, TINY, 0.5, math.nextafter(1.0, 0.0)],
                                  [0.0, 1.0, -0.1, NAN, INF, True, "0.1"]),
    "dataset.test_fraction": Cases([None, TINY, 0.5, 0.93],
                                   [0.0, 1.0, -0.1, 0.96, NAN, INF, True, "0.1"]),
    "objectives": Cases([["val_accuracy"], ["val_accuracy", "n_params"],
                         ["val_accuracy", "latency_ms"]],
                        [[], ["n_params"], ["val_accuracy", "val_accuracy"],
                         ["val_accuracy", "n_params", "latency_ms"], ["x"], "x"]),
}
"""Keys whose checker keeps no bounds of its own."""

CONTEXT: dict[str, dict[str, Any]] = {
    "dataset.test_fraction": {"dataset.name": "imagefolder:/data/pets",
                              "dataset.val_fraction": 0.01},
    "lrrt.bound_rule": {"lrrt.compare_rule": None},
    "lrrt.compare_rule": {"lrrt.bound_rule": "thesis_first_epoch"},
}
"""Other keys a key's boundary values need to be valid together (cross rules)."""


def leaf_keys(cls: type = SearchConfig, prefix: str = "") -> dict[str, Any]:
    """Every config key (dotted) and its checker."""
    keys: dict[str, Any] = {}
    for name, setting in config_keys(cls).items():
        if "section" in setting.metadata:
            keys |= leaf_keys(setting.metadata["section"], f"{prefix}{name}.")
        else:
            keys[f"{prefix}{name}"] = setting.metadata["check"]
    return keys


def key_cases(key: str) -> Cases:
    derived = cases_of(leaf_keys()[key])
    return MANUAL.get(key) or derived  # type: ignore[return-value]


def with_value(key: str, value: Any) -> dict:
    """The tiny config with ``key`` (dotted) set to ``value`` (and its context)."""
    document = tiny_config(study="kept")
    for path, item in {**CONTEXT.get(key, {}), key: value}.items():
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = item
    return document


# --------------------------------------------------------------------------- the flags
REQUIRED = {
    "search": ["--config", "c.yaml"], "lrrt": ["--config", "c.yaml"],
    "export": ["--study", "s"], "train": ["--from", "e.yaml"],
    "worker": ["--study", "s", "--config", "c.yaml"],
    "create-study": ["--study", "s", "--config", "c.yaml"], "reap": ["--study", "s"],
    "trials": ["--study", "s"], "report": ["--study", "s"], "dashboard": [],
    "predict": ["--model", "m"], "package": ["--model", "m"], "proxy": [],
}
"""Placeholder values of each command's required flags, for the parser alone."""

MANUAL_FLAGS: dict[str, Cases] = {
    "--storage": Cases(["sqlite:///x.db", "postgresql://u:p@[::1]:5432/db"],
                       ["sqlite://", "sqlite:///:memory:", "postgresql://u@[::1/db",
                        "postgresql://u@h:0/db", "postgresql://u@h:65536/db", "x"]),
    "--device": Cases(["auto", "cpu", ""], ["tpu", "cuda:x", "cpu\n", "\u202ecpu", "cpu:"]),
    "--set": Cases(["blocks=1"], ["blocks=0", "blocks", "=1", "colour=red", "blocks=[0]",
                                  "lr_range=[[1e-4, 1e-2]]", "blocks=: x"]),
    "--host": Cases(["127.0.0.1", "::1"], ["bad host\n", "::1::1"]),
    "--trials-per-gpu": Cases(["auto", "AUTO", "1", "64"], ["0", "65", "-1", "1.5", "x", ""]),
    "--allowed-host": Cases(["a.example", "a" * 63],
                            ["", "a b", "a/b", "-a", "a" * 64, "é.example", "a..b"]),
}
"""Flags whose value is checked by what it names (a storage, a device...), not a bound."""

FLAG_CHECKED_LATE = {"--storage": ("storage",), "--device": ("device",),
                     "--set": ("--set", "config key"), "--host": ("cannot listen",)}
"""Refused when the command runs, not by the parser (with words the refusal has): their
refusals need a runnable command (a real config, export and storage). The config names an
image folder that does not exist, so a value wrongly accepted ends at the data, never in
training."""


def flag_actions() -> Iterator[tuple[str, argparse.Action]]:
    """(command, action) of every flag that takes a value."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in commands.choices.items():
        for action in sub._actions:
            if action.option_strings and action.nargs != 0 and not isinstance(
                    action, argparse._HelpAction | argparse._VersionAction):
                yield command, action


def flag_cases(action: argparse.Action) -> Cases | None:
    flag = action.option_strings[-1]
    if flag in MANUAL_FLAGS:
        return MANUAL_FLAGS[flag]
    if action.choices:
        return Cases(list(action.choices), ["", "x", str(list(action.choices)[0]).upper()])
    check = getattr(action.type, "check", None)
    if check is None:
        return None
    if getattr(check, "__name__", "") == "threads":
        return Cases(["1", str(cpu_count())], ["0", str(cpu_count() + 1), "10000", "-1",
                                                "1.5", "x", ""])
    derived = cases_of(check)
    if derived is None:
        return None
    if hasattr(check, "max_length"):  # a text: the YAML cases that are text, and bytes
        return Cases([v for v in derived.accept if isinstance(v, str)],
                     [v for v in derived.refuse if isinstance(v, str)] + ["\udce9"])

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    return Cases([repr(v) for v in derived.accept if number(v)],
                 [repr(v) for v in derived.refuse if number(v)] + ["x", "", "1e999"])


# --------------------------------------------------------------------------- running it
@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A SQLite study made from the tiny config, a valid config file and a valid export:
    what a refused value must leave alone, and what lets a command run up to a late check."""
    folder = tmp_path_factory.mktemp("kept")
    url = f"sqlite:///{folder / 'study.db'}"
    study = open_search_study("kept", url, parse_config(tiny_config(study="kept")))
    trial = study.ask()
    trial.suggest_categorical("blocks", [1, 2])
    study.tell(trial, 0.5)
    nowhere = {"name": f"imagefolder:{folder / 'none'}"}
    export = json.loads(LEGACY_EXPORT.read_text())
    export["configs"][0]["config"]["dataset"] = nowhere
    (folder / "no-data.export.yaml").write_text(yaml.safe_dump(export))
    return {"folder": folder, "url": url,
            "config": write_config(folder / "c.yaml", tiny_config(study="kept")),
            "no_data": write_config(folder / "no-data.yaml",
                                    tiny_config(study="kept", dataset=nowhere)),
            "no_data_export": folder / "no-data.export.yaml"}


@dataclass
class Run:
    code: int
    stderr: str


def run_main(argv: list[str], capsys: pytest.CaptureFixture) -> Run:
    """``search.cli.main(argv)`` in this process, its signal handlers restored after."""
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT,
                                                                 signal.SIGTERM)}
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own exit
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return Run(code, capsys.readouterr().err)


def refused_in_one_line(run: Run, *names: str) -> list[str]:
    """What is wrong with the outcome of a refused value (empty: nothing)."""
    problems = []
    lines = run.stderr.splitlines()
    if run.code != 2:
        problems.append(f"exit {run.code}")
    if len(lines) != 1 or not lines[0].startswith("cnnsearch: error: "):
        problems.append(f"{len(lines)} lines: {run.stderr[-300:]!r}")
    if "Traceback" in run.stderr:
        problems.append("a traceback")
    if names and not any(name in run.stderr for name in names):
        problems.append(f"names none of {names}: {run.stderr[-300:]!r}")
    return problems


# --------------------------------------------------------------------------- the tests
def test_every_key_and_flag_has_cases() -> None:
    missing = [key for key in leaf_keys() if key_cases(key) is None]
    missing += [f"{command} {action.option_strings[-1]}" for command, action in flag_actions()
                if flag_cases(action) is None]
    assert not missing, f"no boundary cases for: {missing} (add them to MANUAL or MANUAL_FLAGS)"
    assert len(leaf_keys()) > 70


@pytest.mark.parametrize("key", sorted(leaf_keys()))
def test_every_config_key_takes_its_boundary_values(key: str) -> None:
    """The boundary values pass the key's checker and the config's rules across keys."""
    for value in key_cases(key).accept:
        try:
            parse_config(with_value(key, value))
        except UserError as error:
            pytest.fail(f"{key}={value!r} refused: {error}")


def test_every_config_key_refuses_values_just_outside_through_the_cli(
    kept: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Each key's just-outside values, each in its own YAML file, through ``create-study``
    against an existing study: exit 2, one line naming the key, the study unchanged."""
    before = snapshot(kept["url"])
    failures, count = [], 0
    for key in sorted(leaf_keys()):
        for index, value in enumerate(key_cases(key).refuse):
            path = tmp_path / f"{key}-{index}.yaml"
            path.write_text(yaml.safe_dump(with_value(key, value), allow_unicode=True))
            run = run_main(["create-study", "--study", "kept", "--config", str(path),
                            "--storage", kept["url"], "--artifact-dir", ""], capsys)
            count += 1
            # a section's key is named with its path, a space value as space.key[i]; a rule
            # across two keys names both (val_fraction 0.5 + test_fraction 0.5 ...)
            short = key.rsplit(".", 1)[-1]
            problems = refused_in_one_line(run, f"'{key}", f"{key}'", f"{key}[",
                                           f"+ {short} ")
            if problems:
                failures.append(f"{key}={value!r}: {', '.join(problems)}")
    assert not failures, "\n".join(failures)
    assert count > 400
    assert snapshot(kept["url"]) == before


def test_every_flag_takes_its_boundary_values() -> None:
    parser = build_parser()
    failures = []
    for command, action in flag_actions():
        flag = action.option_strings[-1]
        for value in flag_cases(action).accept:
            try:
                parsed = parser.parse_args([command, *REQUIRED[command], f"{flag}={value}"])
            except SystemExit:
                failures.append(f"{command} {flag}={value!r} refused")
                continue
            assert getattr(parsed, action.dest) is not None
    assert not failures, "\n".join(failures)


def test_every_flag_refuses_values_just_outside_in_one_line(
    kept: dict, capsys: pytest.CaptureFixture
) -> None:
    """Flags the parser checks: refused before anything runs. Flags checked by what they
    name (a storage, a device, a --set, a host): refused when the command runs, given a
    real config, export and storage so that it gets that far."""
    runnable = {
        "search": ["--config", str(kept["no_data"]), "--storage", kept["url"],
                   "--artifact-dir", "", "--checkpoint-dir", ""],
        "lrrt": ["--config", str(kept["no_data"])],
        "export": ["--study", "kept", "--storage", kept["url"]],
        "train": ["--from", str(kept["no_data_export"])],
        "worker": ["--study", "kept", "--config", str(kept["no_data"]), "--storage",
                   kept["url"], "--artifact-dir", "", "--checkpoint-dir", ""],
        "create-study": ["--study", "kept", "--config", str(kept["config"]), "--storage",
                         kept["url"], "--artifact-dir", ""],
        "reap": ["--study", "kept", "--storage", kept["url"]],
        "trials": ["--study", "kept", "--storage", kept["url"]],
        "report": ["--study", "kept", "--storage", kept["url"], "-o",
                   str(kept["folder"] / "never.html")],
        "dashboard": ["--storage", kept["url"], "--port", "0"],
        "predict": ["--model", str(kept["folder"] / "no-model"), "x.png"],
        "proxy": ["--storage", kept["url"], "--port", "0"],
    }
    before = snapshot(kept["url"])
    failures, count = [], 0
    for command, action in flag_actions():
        flag = action.option_strings[-1]
        for value in flag_cases(action).refuse:
            if flag in FLAG_CHECKED_LATE:
                argv = [command, *runnable[command], flag, value]
            else:
                argv = [command, *REQUIRED[command], f"{flag}={value}"]
            run = run_main(argv, capsys)
            count += 1
            problems = refused_in_one_line(run, *FLAG_CHECKED_LATE.get(flag, (flag,)))
            if problems:
                failures.append(f"{command} {flag} {value!r}: {', '.join(problems)}")
    assert not failures, "\n".join(failures)
    assert count > 150
    assert snapshot(kept["url"]) == before
    assert not (kept["folder"] / "never.html").exists()


# --------------------------------------------------------------------------- the issue's cases
def test_the_issues_flag_values_through_real_processes(kept: dict, tmp_path: Path) -> None:
    """--seed -1 and 2**40 traced back, --threads 10000 started 20,001 threads, --study
    skipped the config's checks; a 600-character name traced back on PostgreSQL."""
    config, url = str(kept["config"]), kept["url"]
    cases = {
        "seed -1": ["search", "--config", config, "--seed=-1"],
        "seed 2**40": ["search", "--config", config, "--seed", str(2**40)],
        "threads 10000": ["search", "--config", config, "--threads", "10000"],
        "newline study": ["create-study", "--study", "a\nb", "--config", config],
        "600-character study": ["worker", "--study", "s" * 600, "--config", config],
        "grace <= heartbeat": ["worker", "--study", "kept", "--config", config,
                               "--heartbeat-interval", "30", "--grace-period", "30",
                               "--storage", url],
    }
    before = snapshot(url)
    for name, argv in cases.items():
        result = run_cli(*argv, cwd=tmp_path, timeout=120)
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and len(lines) == 1, (name, result.stderr[-500:])
        assert lines[0].startswith("cnnsearch: error: ") and "Traceback" not in result.stderr
    assert snapshot(url) == before


def test_a_non_utf8_study_name_on_the_command_line_is_refused(kept: dict) -> None:
    """A name from a Latin-1 terminal arrives as undecodable bytes (surrogates here)."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "search", "trials", "--study", b"caf\xe9", "--storage",
         kept["url"]], cwd=ROOT, capture_output=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count(b"\n") == 1 and b"--study" in result.stderr


def test_translate_as_wide_as_the_images_is_refused_with_the_config(tmp_path: Path) -> None:
    """Fashion-MNIST's 28 pixels are known before any image is read."""
    from search.config import load_config

    raw = tiny_config()
    raw["space"]["translate"] = [0, 28]
    with pytest.raises(UserError, match=r"'space.translate': a shift of 28 pixels must be "
                                        r"smaller than the images' 28 pixels"):
        load_config(write_config(tmp_path / "c.yaml", raw))
    raw["space"]["translate"] = [27]
    load_config(write_config(tmp_path / "c.yaml", raw))


def test_an_export_translating_more_than_its_images_is_refused_before_training(
    tmp_path: Path,
) -> None:
    """The issue's export: translate 64 on 16-pixel images passed the export's checks and
    failed in training."""
    import json

    document = json.loads(LEGACY_EXPORT.read_text())
    entry = document["configs"][0]["config"]
    entry["translate"] = 64
    entry["dataset"]["image_size"] = 16
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(document))
    out = tmp_path / "runs"
    result = run_cli("train", "--from", str(path), "--device", "cpu", "--out", str(out),
                     cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "a shift of 64 pixels must be smaller than the images' 16 pixels" in result.stderr
    assert not out.exists()
