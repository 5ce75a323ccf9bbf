"""Hostile inputs end to end: hand-edited exports, hostile configs, and a seeded fuzz of both.

The product's rule: bad input is one line on stderr and exit code 2, in bounded time and
memory, and nothing stored changes. Configs go through ``cnnsearch create-study`` against a
SQLite study that already exists (it must come out identical); exports through ``cnnsearch
train --from`` (nothing may be written). Every CLI run here is a real process limited to
2 GiB of data (``RLIMIT_DATA``), so an unbounded allocation fails the test instead of the
machine. In-process checks cover many more generated documents cheaply.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from search.config import load_config, parse_config
from search.errors import UserError
from search.jobs.export import load_export
from search.method.trial_config import TrialConfig
from search.service.study import open_search_study
from tests.conftest import ROOT, tiny_config, write_brightness_folder
from tests.search.test_cli import snapshot

LEGACY_EXPORT = ROOT / "tests" / "fixtures" / "legacy_study" / "export.json"
MEMORY_LIMIT = 2 * 2**30
SECONDS_LIMIT = 20.0
INF, NAN = float("inf"), float("nan")


# --------------------------------------------------------------------------- running the CLI
@dataclass
class Outcome:
    returncode: int
    stderr: str
    seconds: float


_LIMITED = (
    "import resource, runpy, sys\n"
    f"resource.setrlimit(resource.RLIMIT_DATA, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))\n"
    "sys.argv = ['cnnsearch', *sys.argv[1:]]\n"
    "runpy.run_module('search', run_name='__main__')\n"
)


def run_limited(args: list[str]) -> Outcome:
    """``cnnsearch ARGS`` in a fresh process with at most 2 GiB of data memory."""
    environment = {**os.environ, "CNNSEARCH_STORAGE": ""}
    started = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-c", _LIMITED, *args], cwd=ROOT,
                                env=environment, capture_output=True, text=True,
                                errors="replace", timeout=SECONDS_LIMIT * 3, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(-1, "timed out", time.perf_counter() - started)
    return Outcome(result.returncode, result.stderr, time.perf_counter() - started)


def run_all(commands: dict[str, list[str]]) -> dict[str, Outcome]:
    """Each command, two at a time (the test machine has two cores)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_limited, args) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def problems_of(outcome: Outcome) -> list[str]:
    """What is wrong with the outcome of a bad input (empty: the rule holds)."""
    problems = []
    lines = outcome.stderr.splitlines()
    if outcome.returncode != 2:
        problems.append(f"exit code {outcome.returncode}")
    if "Traceback" in outcome.stderr:
        problems.append("a traceback")
    if not 1 <= len(lines) <= 3 or any(len(line) > 500 for line in lines):
        problems.append(f"{len(lines)} lines, longest {max(map(len, lines), default=0)}")
    if not any(line.startswith("cnnsearch: error: ") for line in lines):
        problems.append("no 'cnnsearch: error:' line")
    if outcome.seconds > SECONDS_LIMIT:
        problems.append(f"{outcome.seconds:.1f} s")
    return problems


def assert_all_refused(outcomes: dict[str, Outcome], expected: dict[str, str] | None = None
                       ) -> None:
    failures = []
    for name, outcome in outcomes.items():
        problems = problems_of(outcome)
        if expected and expected.get(name) and expected[name] not in outcome.stderr:
            problems.append(f"message lacks {expected[name]!r}")
        if problems:
            failures.append(f"{name}: {', '.join(problems)}: {outcome.stderr[-600:]!r}")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def existing_study(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite study with two finished trials, made from the tiny config."""
    folder = tmp_path_factory.mktemp("study")
    url = f"sqlite:///{folder / 'study.db'}"
    study = open_search_study("kept", url, parse_config(tiny_config(study="kept")))
    for value in (0.5, 0.75):
        trial = study.ask()
        trial.suggest_categorical("blocks", [1, 2])
        trial.set_user_attr("note", f"value {value}")
        trial.report(value, 0)
        study.tell(trial, value)
    return url


def legacy_export() -> dict[str, Any]:
    return json.loads(LEGACY_EXPORT.read_text())


def write_export(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# --------------------------------------------------------------------------- exports, in process
def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation of the export: ``path`` (dotted, from the rank-1 entry) set to ``value``;
    a path starting with ``/`` starts from the document."""

    def mutate(document: dict) -> None:
        target: Any = document if path.startswith("/") else document["configs"][0]
        *parents, last = path.strip("/").split(".")
        for part in parents:
            target = target[part]
        target[last] = copy.deepcopy(value)

    return mutate


def _delete(path: str) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        target: Any = document["configs"][0]
        *parents, last = path.split(".")
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


BAD_EXPORTS: dict[str, tuple[Callable[[dict], None], str]] = {
    "configs is a mapping": (_set("/configs", {"a": 1}), "'configs' must be a list"),
    "configs of numbers": (_set("/configs", [1, 2]), "'configs' must be a list"),
    "rank is a list": (_set("rank", [1]), "integer 'rank'"),
    "rank twice": (lambda d: d["configs"].append(copy.deepcopy(d["configs"][0])), "2 times"),
    "config missing": (_delete("config"), "'config' is required"),
    "config is a list": (_set("config", [1]), "expected a mapping"),
    "config key missing": (_delete("config.train"), "'train' is required"),
    "config key unknown": (_set("config.colour", "red"), "'colour' is unknown"),
    "batch_size 0": (_set("config.batch_size", 0), "'batch_size'"),
    "batch_size text": (_set("config.batch_size", "64"), "'batch_size'"),
    "optimizer evil": (_set("config.optimizer", "evil"), "'optimizer'"),
    "seed -5": (_set("config.seed", -5), "'seed'"),
    "seed 2**64": (_set("config.seed", 2**64), "'seed'"),
    "data_seed -1": (_set("config.data_seed", -1), "'data_seed'"),
    "lr_range inf": (_set("config.lr_range", [1e-4, INF]), "'lr_range[1]'"),
    "lr_range reversed": (_set("config.lr_range", [1e-2, 1e-4]), "lr_min < lr_max"),
    "lr_bounds negative": (_set("lr_bounds", [-1, 1]), "'lr_bounds[0]'"),
    "lr_bounds nan": (_set("lr_bounds", [NAN, 1e-2]), "'lr_bounds[0]'"),
    "lr_bounds inf": (_set("lr_bounds", [1e-3, INF]), "'lr_bounds[1]'"),
    "lr_bounds 1e300": (_set("lr_bounds", [1e-3, 1e300]), "'lr_bounds[1]'"),
    "lr_bounds reversed": (_set("lr_bounds", [1e-2, 1e-3]), "lr_min < lr_max"),
    "lr_bounds scalar": (_set("lr_bounds", 0.01), "pair"),
    "lr_bounds missing": (_delete("lr_bounds"), "'lr_bounds' is required"),
    "step_size_epochs inf": (_set("config.train.step_size_epochs", INF),
                             "'train.step_size_epochs'"),
    "train.epochs text": (_set("config.train.epochs", "x"), "'train.epochs'"),
    "train.epochs 0": (_set("config.train.epochs", 0), "'train.epochs'"),
    "train unknown key": (_set("config.train.epochz", 3), "'train.epochz' is unknown"),
    "train is a list": (_set("config.train", [1, 2]), "'train'"),
    "lrrt rules equal": (_set("config.lrrt.compare_rule", "smith_quarter"), "must differ"),
    "lrrt epochs nan": (_set("config.lrrt.epochs", NAN), "'lrrt.epochs'"),
    "filters 10**6": (_set("config.architecture.filters", 10**6), "'architecture.filters'"),
    "blocks text": (_set("config.architecture.blocks", "2"), "architecture"),
    "blocks 0": (_set("config.architecture.blocks", 0), "'architecture.blocks'"),
    "fc_units huge": (_set("config.architecture.fc_units", 10**12), "'architecture.fc_units'"),
    "dropout 1": (_set("config.architecture.dropout", 1.0), "'architecture.dropout'"),
    "l2 inf": (_set("config.architecture.l2", INF), "'architecture.l2'"),
    "batch_norm 5": (_set("config.architecture.batch_norm", 5), "architecture.batch_norm"),
    "architecture unknown": (_set("config.architecture.colour", "red"), "is unknown"),
    "architecture missing blocks": (_delete("config.architecture.blocks"), "blocks"),
    "image_size 10**6": (_set("config.dataset.image_size", 10**6), "'dataset.image_size'"),
    "dataset evil": (_set("config.dataset.name", "evil"), "unknown dataset"),
    "dataset newline": (_set("config.dataset.name", "imagefolder:/a\nb"), "'dataset.name'"),
}


@pytest.mark.parametrize("case", sorted(BAD_EXPORTS))
def test_a_hand_edited_export_is_validated_like_a_config(tmp_path: Path, case: str) -> None:
    mutate, expected = BAD_EXPORTS[case]
    document = legacy_export()
    mutate(document)
    path = write_export(tmp_path / "best.yaml", document)
    with pytest.raises(UserError) as raised:
        load_export(path, 1)
    message = str(raised.value)
    assert expected in message, message
    assert "\n" not in message and len(message) < 400
    assert message.startswith(str(path))


def test_the_exports_users_already_have_still_load() -> None:
    for rank in (1, 2, 3):
        config, (low, high), entry = load_export(LEGACY_EXPORT, rank)
        assert entry["rank"] == rank and 0 < low < high
        assert TrialConfig.from_dict(config.to_dict()) == config


def test_an_export_is_read_with_the_config_limits(tmp_path: Path) -> None:
    text = (tmp_path / "e.yaml")
    text.write_text("format: cnnsearch-export/1\nconfigs: []\nconfigs: []\n")
    with pytest.raises(UserError, match="appears twice"):
        load_export(text, 1)
    text.write_bytes("format: cnnsearch-export/1\nstudy: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_export(text, 1)
    text.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="nested more than"):
        load_export(text, 1)


def test_an_export_never_contains_anchors(tmp_path: Path) -> None:
    from search.jobs.export import dump_export

    shared = {"a": [1, 2]}
    text = dump_export({"configs": [shared, shared]}, "yaml")
    assert "&" not in text and "*" not in text


# --------------------------------------------------------------------------- the CLI, per bullet
def _bomb_mapping(levels: int = 9) -> str:
    items = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    items += [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "{" + ", ".join(items) + "}"


def hostile_config_files(folder: Path) -> dict[str, Path]:
    """The config files of the issue, each one its own file."""
    def dumped(**changes: Any) -> str:
        document = tiny_config(study="kept")
        for key, value in changes.items():
            _assign(document, key.replace("__", "."), value)
        return yaml.safe_dump(document, sort_keys=False)

    valid = dumped()
    without_model = valid.replace("model:\n  l2: 0.0005\n", "")
    files: dict[str, str | bytes] = {
        "latin-1 study name": valid.replace("study: kept", "study: caf\xe9").encode("latin-1"),
        "a binary": Path(sys.executable).read_bytes()[:200_000],
        "100,000-deep nesting": "study: " + "[" * 100_000 + "]" * 100_000,
        "alias bomb at study": f"model: {_bomb_mapping()}\n"
                               + without_model.replace("study: kept", "study: *l8"),
        "alias bomb at blocks": f"model: {_bomb_mapping()}\n" + without_model.replace(
            "  blocks:\n  - 1\n  - 2\n", "  blocks: *l8\n"),
        "lr_range .inf": dumped(space__lr_range=[[1e-4, INF]]),
        "step_size_epochs .inf": dumped(train__step_size_epochs=INF),
        "image_size 4096": dumped(dataset__image_size=4096),
        "blocks twice": valid.replace("  blocks:\n", "  blocks: [1]\n  blocks:\n"),
    }
    assert "*l8" in files["alias bomb at blocks"] and ".inf" in files["lr_range .inf"]
    paths = {}
    for index, (name, content) in enumerate(files.items()):
        paths[name] = _write_any(folder / f"config-{index}.yaml", content)
    return paths


def test_hostile_configs_are_one_line_exit_2_and_leave_the_study_alone(
    existing_study: str, tmp_path: Path
) -> None:
    files = hostile_config_files(tmp_path)
    before = snapshot(existing_study)
    outcomes = run_all({name: ["create-study", "--study", "kept", "--config", str(path),
                               "--storage", existing_study, "--artifact-dir", ""]
                        for name, path in files.items()})
    assert_all_refused(outcomes, {
        "latin-1 study name": "not UTF-8", "100,000-deep nesting": "nested more than",
        "alias bomb at study": "aliases", "alias bomb at blocks": "aliases",
        "lr_range .inf": "space.lr_range",
        "step_size_epochs .inf": "train.step_size_epochs", "image_size 4096": "memory",
        "blocks twice": "appears twice"})
    assert snapshot(existing_study) == before


def test_hand_edited_exports_are_one_line_exit_2_through_train(tmp_path: Path) -> None:
    # every listed case is also checked in process above; these go through the real CLI
    cases = ["configs is a mapping", "optimizer evil", "seed -5", "lr_bounds nan",
             "lr_bounds reversed", "step_size_epochs inf", "train.epochs text"]
    files = {}
    for index, case in enumerate(cases):
        document = legacy_export()
        BAD_EXPORTS[case][0](document)
        files[case] = write_export(tmp_path / f"export-{index}.yaml", document)
    files["binary"] = tmp_path / "binary.yaml"
    files["binary"].write_bytes(Path(sys.executable).read_bytes()[:100_000])
    files["deep nesting"] = tmp_path / "deep.yaml"
    files["deep nesting"].write_text("[" * 100_000 + "]" * 100_000)
    out = tmp_path / "runs"
    outcomes = run_all({case: ["train", "--from", str(path), "--epochs", "1", "--device", "cpu",
                               "--out", str(out)] for case, path in files.items()})
    assert_all_refused(outcomes, {case: BAD_EXPORTS[case][1] for case in cases})
    assert not out.exists()


def test_an_exported_design_too_large_for_memory_is_refused_before_training(
    tmp_path: Path,
) -> None:
    folder = write_brightness_folder(tmp_path / "images", images_per_class=6, side=64)
    document = legacy_export()
    entry = document["configs"][0]["config"]
    entry["dataset"] = {"name": f"imagefolder:{folder}"}
    entry["architecture"].update(blocks=1, filters=1024, fc_units="thesis")
    out = tmp_path / "runs"
    outcome = run_limited(["train", "--from", str(write_export(tmp_path / "big.yaml", document)),
                           "--device", "cpu", "--out", str(out)])
    assert not problems_of(outcome), outcome.stderr
    assert "B1FL1024" in outcome.stderr and "memory" in outcome.stderr
    assert not out.exists()


def test_the_data_path_checks_the_space_against_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import data.memory_budget
    from search.method.prepared_data import check_space_fits, load_data

    folder = write_brightness_folder(tmp_path / "images", images_per_class=4, side=16)
    config = parse_config(tiny_config(dataset={"name": f"imagefolder:{folder}"}))
    dataset = load_data(config.dataset, 0)
    check_space_fits(config, dataset)
    monkeypatch.setattr(data.memory_budget, "_budget", lambda: (2**20, "a test budget"))
    with pytest.raises(UserError,
                       match=r"the design B\dFL4 .* at batch_size 50 .*\(a test budget\)"):
        check_space_fits(config, dataset)


# --------------------------------------------------------------------------- the fuzz
INT_KEYS = {
    "seed": (0, 2**31 - 1), "n_trials": (1, 10**9), "dataset.train_size": (1, 10**9),
    "dataset.val_size": (1, 10**9), "dataset.image_size": (4, 4096),
    "lrrt.sma_periods": (1, 10000), "pruner.warmup_trials": (0, 10**6),
    "pruner.after_lrrt_startup_trials": (0, 10**6),
    "pruner.after_lrrt_warmup_epochs": (0, 100000), "train.epochs": (1, 100000),
    "train.eval_batch_size": (1, 2**20),
}
NUMBER_KEYS = {
    "model.l2": (0.0, 1.0), "lrrt.epochs": (0.0, 1000.0),
    "lrrt.disagreement_factor": (1.0, 1e6), "lrrt.divergence_factor": (1.0, 1e6),
    "pruner.chance_margin": (0.0, 1.0), "pruner.percentile": (0.0, 100.0),
    "pruner.peer_margin": (0.0, 1.0), "pruner.min_usable_fraction": (0.0, 1.0),
    "train.step_size_epochs": (0.0, 1e5), "train.sgd_momentum": (0.0, 1.0),
}
CHOICE_KEYS = ("sampler", "lrrt.bound_rule", "pruner.after_lrrt", "lrrt.ramp")
BOOL_KEYS = ("dataset.download", "pruner.prune_unstable")
TEXT_KEYS = ("study", "dataset.name", "dataset.data_dir")
SPACE_INT_KEYS = {"space.blocks": (1, 8), "space.filters": (1, 1024),
                  "space.batch_size": (1, 65536)}
SECTIONS = ("dataset", "space", "model", "lrrt", "pruner", "train")


def _wrong_types(generator: random.Random) -> Any:
    return generator.choice(["x", "", [1], [[1]], {"a": 1}, {"nested": {"deep": [1]}},
                             "true", "1e-3", "\u202e\u0000"])


def _bad_int(generator: random.Random, low: int, high: int) -> Any:
    return generator.choice([low - 1, high + 1, -(10**30), 10**30, 10**400, 2.5, INF, NAN,
                             True, float(low), _wrong_types(generator)])


def _bad_number(generator: random.Random, low: float, high: float) -> Any:
    return generator.choice([low - 1.0, high * 10 + 1, INF, -INF, NAN, 1e300, -1e300,
                             10**400, True, _wrong_types(generator)])


def bad_config_value(generator: random.Random) -> tuple[str, Any]:
    """A config key and a value that key must refuse."""
    family = generator.choice(["int", "number", "choice", "bool", "text", "space", "lr",
                               "fc", "dropout", "section"])
    if family == "int":
        key = generator.choice(sorted(INT_KEYS))
        return key, _bad_int(generator, *INT_KEYS[key])
    if family == "number":
        key = generator.choice(sorted(NUMBER_KEYS))
        return key, _bad_number(generator, *NUMBER_KEYS[key])
    if family == "choice":
        return generator.choice(CHOICE_KEYS), generator.choice(["evil", "", 3, ["tpe"], 1.5])
    if family == "bool":
        return generator.choice(BOOL_KEYS), generator.choice(["yes", 1, 0.0, [True], "true"])
    if family == "text":
        return generator.choice(TEXT_KEYS), generator.choice(
            ["", "   ", "a\nb", "x" * 5000, 42, ["x"], "nul\x00", {"a": 1}, True])
    if family == "space":
        key = generator.choice(sorted(SPACE_INT_KEYS))
        low, high = SPACE_INT_KEYS[key]
        return key, generator.choice([[], [low - 1], [high + 1], ["x"], [1.5], [True], [[1]],
                                      list(range(1, 1002)), [low, low], {"a": 1}, 10**400])
    if family == "lr":
        return "space.lr_range", generator.choice(
            [[[1e-4]], [[1e-2, 1e-4]], [[0, 1]], [[1e-4, INF]], [[NAN, 1]], [[1e-4, 1e300]],
             "x", [["a", "b"]], [[-1, 1]], [[1e-4, 100]], [[1e-4, 10**400]], []])
    if family == "fc":
        return "space.fc_units", generator.choice([[0], ["big"], [10**9], [1.5], [None]])
    if family == "dropout":
        return "space.dropout", generator.choice([[1.0], [-0.1], [NAN], ["x"], [INF]])
    return generator.choice(SECTIONS), generator.choice([5, [1], "x", True, [{"a": 1}]])


def _assign(document: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    target = document
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _anchored(text: str, key: str, generator: random.Random) -> str:
    """``text`` with a billion-laughs mapping under an unknown top key, used at ``key``."""
    levels = generator.randint(7, 10)
    last = f"*l{levels - 1}"
    document = yaml.safe_load(text)
    _assign(document, key, "BOMB")
    body = yaml.safe_dump(document, sort_keys=False).replace("BOMB", last)
    return f"z_anchors: {_bomb_mapping(levels)}\n" + body


def generated_config(generator: random.Random) -> str | bytes:
    """A YAML config that is bad in one generated way (value, encoding, nesting, aliases,
    duplicates, size or memory)."""
    document = tiny_config(study="kept")
    family = generator.choice(["value", "value", "value", "encoding", "nesting", "alias",
                               "duplicate", "unknown", "missing", "size", "memory"])
    if family == "value":
        _assign(document, *bad_config_value(generator))
    elif family == "unknown":
        section = generator.choice(["", *SECTIONS])
        name = generator.choice(["blokcs", "é", "x\ny", "k" * 300, "7", "<<<"])
        _assign(document, f"{section}.{name}" if section else name, 1)
    elif family == "missing":
        path = generator.choice(["study", "dataset", "space", "space.optimizer", "dataset.name",
                                 "space.lr_range"]).split(".")
        target = document
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    elif family == "memory":  # ~10**20 bytes: too much for any machine
        document["dataset"].update(image_size=4096, train_size=generator.randint(10, 400))
        document["space"].update(blocks=[1], filters=[1024], fc_units=["thesis"])
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if family == "encoding":
        kind = generator.choice(["latin-1", "utf-16", "random", "nul", "bom-garbage"])
        if kind == "latin-1":
            return text.replace("study: kept", "study: k\xe9pt").encode("latin-1")
        if kind == "utf-16":
            return text.encode("utf-16")
        if kind == "random":
            return generator.randbytes(generator.randint(1, 5000))
        if kind == "nul":
            cut = generator.randrange(len(text))
            return text[:cut] + "\x00" + text[cut:]
        return b"\xef\xbb\xbf" + generator.randbytes(500)
    if family == "nesting":
        depth = generator.choice([40, 1000, 100_000])
        opening, closing = generator.choice([("[", "]"), ("{a: ", "}")])
        deep = opening * depth + "1" + closing * depth
        return text.replace("study: kept", f"study: {deep}")
    if family == "alias":
        key = generator.choice(["study", "space.blocks", "space.lr_range", "dataset",
                                "train.epochs", "seed"])
        return _anchored(text, key, generator)
    if family == "duplicate":
        return text + generator.choice(["study: again\n", "space: {blocks: [1]}\n",
                                        "seed: 0\n"])
    if family == "size":
        return text + "#" * (300 * 2**10) + "\n"
    return text


def bad_export_value(generator: random.Random) -> tuple[str, Any]:
    """A key of an export's rank-1 entry (dotted) and a value it must refuse."""
    family = generator.choice(["int", "number", "lr", "arch", "top", "dataset"])
    if family == "int":
        key = generator.choice(["train.epochs", "lrrt.sma_periods", "train.eval_batch_size",
                                "dataset.train_size"])
        low, high = INT_KEYS.get(key, (1, 10000))
        return f"config.{key}", _bad_int(generator, low, high)
    if family == "number":
        key = generator.choice(["train.step_size_epochs", "lrrt.epochs", "train.sgd_momentum",
                                "lrrt.divergence_factor"])
        return f"config.{key}", _bad_number(generator, *NUMBER_KEYS.get(key, (1.0, 1e6)))
    if family == "lr":
        return generator.choice(["lr_bounds", "config.lr_range"]), generator.choice(
            [[-1, 1], [NAN, 1e-2], [1e-3, INF], [1e-2, 1e-3], 0.01, [1e-3], "x", [1e-3, 1e300],
             [0, 1e-2], [True, 1e-2], {"a": 1}])
    if family == "arch":
        key = generator.choice(["blocks", "filters", "fc_units", "dropout", "l2", "batch_norm"])
        return f"config.architecture.{key}", generator.choice(
            [-0.5, -1, 10**9, INF, NAN, [2], {"a": 1}, 1.5, 10**400])
    if family == "top":
        key = generator.choice(["config.optimizer", "config.batch_size", "config.seed",
                                "config.data_seed", "rank"])
        return key, generator.choice(["evil", -5, -1, [1], {"a": 1}, 2**70, NAN])
    return f"config.dataset.{generator.choice(['name', 'image_size'])}", generator.choice(
        ["evil", 10**6, 0, "", ["x"], "imagefolder:", INF])


def generated_export(generator: random.Random) -> str | bytes:
    """An export bad in one generated way."""
    document = legacy_export()
    family = generator.choice(["value", "value", "value", "structure", "encoding", "nesting",
                               "alias", "duplicate", "size"])
    if family == "value":
        _set(*bad_export_value(generator))(document)
    elif family == "structure":
        mutate = generator.choice(["configs is a mapping", "configs of numbers", "rank twice",
                                   "config missing", "config is a list", "lr_bounds missing",
                                   "architecture missing blocks", "config key unknown"])
        BAD_EXPORTS[mutate][0](document)
    text = yaml.safe_dump(document, sort_keys=False)
    if family == "encoding":
        return generator.choice([
            text.replace('name: B1FL4Adam', 'name: B1FL4Ad\xe9m').encode("latin-1"),
            generator.randbytes(generator.randint(1, 3000)), text.encode("utf-16")])
    if family == "nesting":
        depth = generator.choice([40, 100_000])
        return text.replace("rank: 1", "rank: " + "[" * depth + "]" * depth, 1)
    if family == "alias":
        body = text.replace("rank: 1\n", "rank: 1\n  bomb: *l8\n", 1)
        return f"z_anchors: {_bomb_mapping()}\n" + body
    if family == "duplicate":
        return text.replace("- rank: 1\n", "- rank: 1\n  rank: 1\n", 1)
    if family == "size":
        return text + "#" * (5 * 2**20) + "\n"
    return text


def _write_any(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_fuzzed_configs_and_exports_through_the_cli(existing_study: str, tmp_path: Path) -> None:
    """40 generated bad files (seeded), each through the real CLI: exit 2, at most 3 short
    lines, no traceback, < 20 s under a 2 GiB data limit, and the study unchanged."""
    generator = random.Random(20261125)
    commands: dict[str, list[str]] = {}
    out = tmp_path / "runs"
    for index in range(24):
        path = _write_any(tmp_path / f"config-{index}.yaml", generated_config(generator))
        commands[f"config {index}"] = ["create-study", "--study", "kept", "--config", str(path),
                                       "--storage", existing_study, "--artifact-dir", ""]
    for index in range(16):
        path = _write_any(tmp_path / f"export-{index}.yaml", generated_export(generator))
        commands[f"export {index}"] = ["train", "--from", str(path), "--epochs", "1",
                                       "--device", "cpu", "--out", str(out)]
    before = snapshot(existing_study)
    outcomes = run_all(commands)
    assert_all_refused(outcomes)
    assert snapshot(existing_study) == before
    assert not out.exists()


def _one_line_or_valid(read: Callable[[], object]) -> object:
    """``read()``'s value, or None when it raised a one-line UserError; anything else fails."""
    try:
        return read()
    except UserError as error:
        message = str(error)
        assert "\n" not in message and len(message) <= 1000, message
        return None


def test_many_generated_configs_in_process(tmp_path: Path) -> None:
    """Hundreds more generated bad configs, read in this process: each one a one-line
    UserError within 5 s, nothing else."""
    generator = random.Random(7)
    refused = 0
    for index in range(300):
        path = _write_any(tmp_path / f"c{index}.yaml", generated_config(generator))
        started = time.perf_counter()
        refused += _one_line_or_valid(lambda path=path: load_config(path)) is None
        assert time.perf_counter() - started < 5, path.read_bytes()[:200]
    assert refused == 300


def test_many_generated_exports_in_process(tmp_path: Path) -> None:
    """Generated bad exports, read in this process: each one a one-line UserError."""
    generator = random.Random(11)
    refused = 0
    for index in range(150):
        path = _write_any(tmp_path / f"e{index}.yaml", generated_export(generator))
        refused += _one_line_or_valid(lambda path=path: load_export(path, 1)) is None
    assert refused == 150
