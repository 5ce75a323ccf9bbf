"""The YAML search configuration: shipped files parse, every mistake names its key."""

from __future__ import annotations

import copy
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from search.config import (
    DatasetSettings,
    LRRTSettings,
    SearchConfig,
    SpaceSettings,
    load_config,
    parse_config,
)
from search.config.settings import config_keys, is_required
from search.errors import UserError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.endswith(".export.yaml"))
"""The shipped search configs (``*.export.yaml`` are exports, for ``cnnsearch train``)."""

MINIMAL: dict[str, Any] = {
    "study": "unit",
    "dataset": {"name": "fashion-mnist"},
    "space": {
        "blocks": [2, 3],
        "filters": [4, 8],
        "optimizer": ["adam", "sgd"],
        "lr_range": [[1.0e-4, 1.0e-2], [1.0e-2, 1.0e-1]],
    },
}


def raw(**changes: Any) -> dict[str, Any]:
    """A deep copy of MINIMAL with ``section__key=value`` (or ``key=value``) changes."""
    values = copy.deepcopy(MINIMAL)
    for name, value in changes.items():
        section, _, key = name.partition("__")
        if key:
            values.setdefault(section, {})[key] = value
        else:
            values[section] = value
    return values


def error_of(values: Any) -> str:
    with pytest.raises(UserError) as raised:
        parse_config(values)
    return str(raised.value)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_parse(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, SearchConfig)
    assert config.study
    assert config.space.blocks and config.space.filters and config.space.lr_range


def test_both_shipped_configs_exist() -> None:
    assert {p.name for p in CONFIGS.glob("*.yaml")} >= {"cifar10-thesis.yaml",
                                                        "fashion-mnist.yaml"}


def test_thesis_config_is_the_thesis_space() -> None:
    config = load_config(CONFIGS / "cifar10-thesis.yaml")
    assert config.dataset.name == "cifar10"
    assert config.space.blocks == (2, 3, 4)
    assert config.space.filters == (4, 8, 16, 32)
    assert config.space.optimizer == ("adam", "sgd")
    assert config.space.lr_range == ((1e-4, 1e-2), (1e-2, 1e-1))
    assert config.lrrt.epochs == 8
    assert config.lrrt.bound_rule == "thesis_first_epoch"
    assert config.model.l2 == 0.01
    assert config.train.epochs == 50


def test_defaults_fill_the_optional_sections() -> None:
    config = parse_config(raw())
    assert config.seed == 0
    assert config.sampler == "tpe"
    assert config.n_trials is None
    assert config.space.batch_size == (128,)
    assert config.space.fc_units == ("thesis",)
    assert config.space.batch_norm == (False,)
    assert config.space.dropout == (0.0,)
    assert config.model.l2 == 0.01
    assert config.lrrt.epochs == 8.0
    assert config.lrrt.bound_rule == "thesis_first_epoch"
    assert config.pruner.after_lrrt == "median"
    assert config.train.epochs == 50


def test_values_are_normalised() -> None:
    config = parse_config(raw(space__optimizer=["ADAM"], lrrt__epochs=1, model__l2=0))
    assert config.space.optimizer == ("adam",)
    assert config.lrrt.epochs == 1.0 and isinstance(config.lrrt.epochs, float)
    assert config.model.l2 == 0.0


def test_unknown_top_level_key_is_named_with_the_allowed_keys() -> None:
    message = error_of(raw(studdy="x"))
    assert "'studdy'" in message
    assert "unknown" in message
    for allowed in ("study", "dataset", "space", "lrrt", "pruner", "train", "seed", "sampler"):
        assert allowed in message


def test_unknown_section_key_is_named_with_the_allowed_keys() -> None:
    message = error_of(raw(space__blokcs=[2]))
    assert "space.blokcs" in message
    assert "unknown" in message
    for allowed in ("blocks", "filters", "optimizer", "lr_range", "batch_size", "dropout"):
        assert allowed in message


@pytest.mark.parametrize(
    ("changes", "key", "allowed"),
    [
        ({"space__blocks": [0]}, "space.blocks", ">= 1"),
        ({"space__blocks": [2, 9]}, "space.blocks", "<= 8"),
        ({"space__lr_range": [[1e-2, 1e-4]]}, "space.lr_range", "lr_min < lr_max"),
        ({"space__lr_range": [[0.0, 1e-2]]}, "space.lr_range", "> 0"),
        ({"space__lr_range": [[1e-4, 1e-2, 1e-1]]}, "space.lr_range", "pair"),
        ({"model__l2": -0.01}, "model.l2", ">= 0"),
        ({"space__optimizer": ["lion"]}, "space.optimizer", "adam, sgd"),
        ({"space__dropout": [1.0]}, "space.dropout", "< 1"),
        ({"space__fc_units": [0]}, "space.fc_units", "'thesis' or a positive integer"),
        ({"space__batch_norm": ["yes"]}, "space.batch_norm", "true, false or one of none"),
        ({"space__blocks": [2, 2]}, "space.blocks", "without duplicates"),
        ({"space__blocks": [True]}, "space.blocks", "an integer"),
        ({"lrrt__epochs": 0}, "lrrt.epochs", "> 0"),
        ({"lrrt__bound_rule": "steepest"}, "lrrt.bound_rule", "thesis_first_epoch"),
        ({"lrrt__compare_rule": "thesis_first_epoch"}, "lrrt.compare_rule", "must differ"),
        ({"pruner__after_lrrt": "asha"}, "pruner.after_lrrt", "hyperband"),
        ({"pruner__chance_margin": 1.0}, "pruner.chance_margin", "< 1"),
        ({"pruner__weights_still": 1.0}, "pruner.weights_still", "< 1"),
        ({"train__epochs": 0}, "train.epochs", ">= 1"),
        ({"train__sgd_momentum": 1.0}, "train.sgd_momentum", "< 1"),
        ({"sampler": "cmaes"}, "sampler", "tpe, random, grid, brute_force"),
        ({"seed": -1}, "seed", ">= 0"),
    ],
)
def test_out_of_range_values_name_the_key_and_what_is_allowed(
    changes: dict[str, Any], key: str, allowed: str
) -> None:
    message = error_of(raw(**changes))
    assert f"'{key}" in message
    assert allowed in message


def test_the_error_names_the_offending_list_item() -> None:
    assert "'space.filters[1]'" in error_of(raw(space__filters=[4, -8]))


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("study: x\ndataset:\n  name: mnist\nspace: [unclosed\n  blocks: 2\n")
    with pytest.raises(UserError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith("malformed YAML")
    assert str(path) in message
    line = re.search(r"line (\d+)", message)
    assert line is not None
    assert int(line.group(1)) >= 4  # the flow sequence opened on line 4 never closes


def test_malformed_yaml_reports_the_exact_line_of_a_bad_indent(tmp_path: Path) -> None:
    path = tmp_path / "indent.yaml"
    path.write_text("study: x\ndataset:\n  name: mnist\n bad: 1\n")
    with pytest.raises(UserError, match=r"malformed YAML .* line 4"):
        load_config(path)


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    assert "mapping" in error_of(["study", "x"])


@pytest.mark.parametrize(
    ("remove", "key"),
    [(("study",), "'study'"), (("dataset",), "'dataset'"),
     (("space", "optimizer"), "'space.optimizer'"), (("space", "lr_range"), "'space.lr_range'"),
     (("dataset", "name"), "'dataset.name'")],
)
def test_missing_required_key(remove: tuple[str, ...], key: str) -> None:
    values = raw()
    target = values
    for part in remove[:-1]:
        target = target[part]
    del target[remove[-1]]
    message = error_of(values)
    assert key in message
    assert "required" in message


def test_unknown_dataset_name_lists_the_known_ones() -> None:
    message = error_of(raw(dataset__name="cifar11"))
    assert "'dataset.name'" in message
    assert "cifar11" in message
    assert "cifar10" in message and "fashion-mnist" in message


def test_image_folder_dataset_names_are_accepted() -> None:
    assert parse_config(raw(dataset__name="imagefolder:/data/birds")).dataset.name == (
        "imagefolder:/data/birds"
    )


def test_a_scalar_is_a_one_choice_list() -> None:
    config = parse_config(raw(space__blocks=3, space__optimizer="sgd", space__batch_size=32,
                              space__fc_units="thesis", space__dropout=0.5))
    assert config.space.blocks == (3,)
    assert config.space.optimizer == ("sgd",)
    assert config.space.batch_size == (32,)
    assert config.space.fc_units == ("thesis",)
    assert config.space.dropout == (0.5,)


def test_yaml_file_and_dict_give_the_same_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw()))
    assert load_config(path) == parse_config(raw())


def test_fingerprint_is_stable_for_equal_configs() -> None:
    first = parse_config(raw())
    second = parse_config(raw())
    assert first.fingerprint() == second.fingerprint()
    # key order in the YAML does not matter
    reordered = dict(reversed(list(raw().items())))
    assert parse_config(reordered).fingerprint() == first.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", first.fingerprint())


@pytest.mark.parametrize(
    "changes",
    [{"space__blocks": [2, 4]}, {"space__lr_range": [[1e-4, 1e-2]]}, {"sampler": "random"},
     {"lrrt__epochs": 2}, {"dataset__name": "mnist"}],
)
def test_fingerprint_differs_for_different_configs(changes: dict[str, Any]) -> None:
    assert parse_config(raw(**changes)).fingerprint() != parse_config(raw()).fingerprint()


@pytest.mark.parametrize(
    "changes",
    [{"n_trials": 50}, {"seed": 7}, {"dataset__download": True},
     {"n_trials": 3, "seed": 1}],
)
def test_budget_and_seed_are_not_part_of_the_fingerprint(changes: dict[str, Any]) -> None:
    """A study is resumed with another budget or seed; the legacy fingerprint (what studies
    made before stored) still tells them apart."""
    changed, plain = parse_config(raw(**changes)), parse_config(raw())
    assert changed.fingerprint() == plain.fingerprint()
    assert changed.legacy_fingerprint() != plain.legacy_fingerprint()


def test_identity_differences_name_the_keys_with_both_values() -> None:
    from search.config.settings import identity_differences

    stored = parse_config(raw())
    new = parse_config(raw(space__blocks=[4], train={"epochs": 3, "decay": {"gamma": 0.5}},
                           n_trials=9, seed=3))
    assert identity_differences(stored, new) == [
        ("space.blocks", (2, 3), (4,)),
        ("train.epochs", 50, 3),
        ("train.decay.gamma", None, 0.5),
    ]
    assert identity_differences(stored, parse_config(raw(n_trials=9))) == []


def _as_yaml(value: Any) -> Any:
    """A default as YAML would give it: tuples are lists."""
    return [_as_yaml(item) for item in value] if isinstance(value, tuple) else value


SECTIONS = {f.name: f.metadata["section"] for f in fields(SearchConfig)
            if "section" in f.metadata}


@pytest.mark.parametrize("cls", [SearchConfig, *SECTIONS.values()], ids=lambda c: c.__name__)
def test_every_default_passes_its_own_checker(cls: type) -> None:
    for setting in config_keys(cls).values():
        if "check" not in setting.metadata or is_required(setting):
            continue
        check = setting.metadata["check"]
        assert check(setting.name, _as_yaml(setting.default)) == setting.default, setting.name


def test_the_schema_is_the_dataclass_fields() -> None:
    assert set(config_keys(SearchConfig)) == {f.name for f in fields(SearchConfig)} - {"raw"}
    required = {name for name, f in config_keys(SearchConfig).items() if is_required(f)}
    assert required == {"study", "dataset", "space"}
    assert {name for name, f in config_keys(SpaceSettings).items() if is_required(f)} == {
        "optimizer", "lr_range"
    }
    assert {name for name, f in config_keys(DatasetSettings).items() if is_required(f)} == {
        "name"
    }
    # the defaults a config leaves out are the dataclasses' own
    config = parse_config(raw())
    for name, cls in SECTIONS.items():
        if name not in MINIMAL:
            assert getattr(config, name) == cls()


def test_a_null_optional_section_is_its_defaults() -> None:
    assert parse_config(raw(lrrt=None)).lrrt == LRRTSettings()


# --------------------------------------------------------------------------- hostile files


def _load_error(path: Path) -> str:
    """The message of the UserError ``load_config`` raises (it must raise one, nothing else)."""
    with pytest.raises(UserError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 500, message[:1000]
    return message


def _write(tmp_path: Path, content: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "content",
    [
        "study: caf\xe9\n".encode("latin-1"),
        bytes(range(256)) * 4,
        "study: x\n".encode("utf-16"),
    ],
    ids=["latin-1", "all-bytes", "utf-16"],
)
def test_a_file_that_is_not_utf8_text_is_one_line(tmp_path: Path, content: bytes) -> None:
    message = _load_error(_write(tmp_path, content))
    assert "not UTF-8 text" in message and "c.yaml" in message


def test_a_binary_file_is_one_line(tmp_path: Path) -> None:
    import sys

    _load_error(_write(tmp_path, Path(sys.executable).read_bytes()[:100_000]))
    message = _load_error(_write(tmp_path, b"\x7fELF\x02\x01\x01" + bytes(200), "elf.yaml"))
    assert "not allowed" in message


def test_random_bytes_are_one_line(tmp_path: Path) -> None:
    import random

    generator = random.Random(7)
    for index in range(20):
        content = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 400)))
        _load_error(_write(tmp_path, content, f"r{index}.yaml"))


@pytest.mark.parametrize(
    "content",
    ["[" * 100_000 + "]" * 100_000, "\n".join(" " * i + "a:" for i in range(500)) + " 1",
     "- " * 100_000 + "1",
     "{a: " * 40_000 + "1" + "}" * 40_000],
    ids=["flow-lists", "mappings", "block-lists", "flow-mappings"],
)
def test_very_deep_nesting_is_one_line(tmp_path: Path, content: str) -> None:
    assert "nested more than" in _load_error(_write(tmp_path, content))


def test_control_characters_in_the_file_are_one_line(tmp_path: Path) -> None:
    message = _load_error(_write(tmp_path, "study: a\x00b\n"))
    assert "not allowed" in message


def _bomb(levels: int = 9, width: int = 9) -> str:
    """The billion laughs as a mapping of anchors: each ``width`` aliases of the one before,
    ``l{levels - 1}`` standing for ``width ** levels`` strings."""
    items = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        items.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "{" + ", ".join(items) + "}"


@pytest.mark.parametrize("key", ["study", "blocks"])
def test_an_alias_bomb_is_refused_quickly_with_a_short_message(
    tmp_path: Path, key: str
) -> None:
    import time

    # The anchors sit in `model`, a section checked after the key that uses the bomb.
    document = (f"model: {_bomb()}\n"
                f"study: {'*l8' if key == 'study' else 'x'}\n"
                "dataset: {name: fashion-mnist}\n"
                f"space: {{blocks: {'*l8' if key == 'blocks' else '[1]'}, filters: [2], "
                "optimizer: [adam], lr_range: [[1.0e-4, 1.0e-2]]}\n")
    started = time.perf_counter()
    message = _load_error(_write(tmp_path, document))
    assert time.perf_counter() - started < 5
    assert "aliases" in message and "values" in message


def test_small_anchors_and_aliases_still_work(tmp_path: Path) -> None:
    path = _write(tmp_path, yaml.safe_dump(raw()).replace(
        "lr_range:", "lr_range: &ranges").replace("study: unit", "study: unit"))
    assert load_config(path).space.lr_range == ((1e-4, 1e-2), (1e-2, 1e-1))
    shared = _write(tmp_path, "x: &two [2, 3]\n", "a.yaml")
    with pytest.raises(UserError, match="'x' is unknown"):
        load_config(shared)


def test_a_value_quoted_in_a_message_is_cut_to_80_characters() -> None:
    message = error_of(raw(study=["x" * 100_000] * 1000))
    assert len(message) < 200 and "..." in message
    message = error_of(raw(space__blocks={"k" * 50_000: 1}))
    assert len(message) < 200
    message = error_of(raw(**{"space__" + "y" * 10_000: 1}))
    assert len(message) < 400 and "is unknown" in message


def test_a_file_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "study: x\n" + "# padding\n" * 100_000)
    assert "too large" in _load_error(path)


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ("study: a\nstudy: b\n", "study"),
        ("study: a\nspace: {blocks: [1]}\nspace: {blocks: [2]}\n", "space"),
        ("study: a\nspace:\n  blocks: [1]\n  blocks: [2]\n", "blocks"),
        ("study: a\n1: x\n0x1: y\n", "1"),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path: Path, document: str, key: str) -> None:
    message = _load_error(_write(tmp_path, document))
    assert f"key {key!r} appears twice" in message.replace("key 1 ", "key '1' ")
    assert "line" in message


def test_yaml_values_python_cannot_build_are_one_line(tmp_path: Path) -> None:
    assert "as int" in _load_error(_write(tmp_path, "seed: " + "9" * 5000 + "\n"))
    assert "as timestamp" in _load_error(_write(tmp_path, "study: 2020-13-45\n"))


# --------------------------------------------------------------------------- finite ranges


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"space__lr_range": [[1e-4, float("inf")]]}, "space.lr_range[0][1]"),
        ({"space__lr_range": [[1e-4, 1e300]]}, "space.lr_range[0][1]"),
        ({"space__lr_range": [[1e-4, 10**400]]}, "space.lr_range[0][1]"),
        ({"space__lr_range": [[float("nan"), 1e-2]]}, "space.lr_range[0][0]"),
        ({"train__step_size_epochs": float("inf")}, "train.step_size_epochs"),
        ({"train__step_size_epochs": 10**400}, "train.step_size_epochs"),
        ({"train__eval_batch_size": 10**12}, "train.eval_batch_size"),
        ({"model__l2": float("inf")}, "model.l2"),
        ({"model__l2": 1e10}, "model.l2"),
        ({"lrrt__disagreement_factor": float("inf")}, "lrrt.disagreement_factor"),
        ({"lrrt__divergence_factor": 1e300}, "lrrt.divergence_factor"),
        ({"pruner__warmup_trials": 10**30}, "pruner.warmup_trials"),
        ({"pruner__after_lrrt_startup_trials": 10**30}, "pruner.after_lrrt_startup_trials"),
        ({"pruner__after_lrrt_warmup_epochs": 10**30}, "pruner.after_lrrt_warmup_epochs"),
        ({"n_trials": 10**30}, "n_trials"),
        ({"dataset__train_size": 10**30}, "dataset.train_size"),
        ({"space__fc_units": [10**9]}, "space.fc_units[0]"),
        ({"space__filters": list(range(1, 1025)) * 2}, "space.filters"),
        ({"study": "two\nlines"}, "study"),
        ({"study": "s" * 300}, "study"),
        ({"dataset__data_dir": "/tmp/a\x00b"}, "dataset.data_dir"),
        ({"dataset__name": "imagefolder:/x\ny"}, "dataset.name"),
    ],
)
def test_every_number_is_finite_and_bounded_and_every_text_one_short_line(
    changes: dict[str, Any], key: str
) -> None:
    message = error_of(raw(**changes))
    assert f"'{key}'" in message and "\n" not in message and len(message) < 300


def test_image_size_that_cannot_fit_in_memory_is_refused_by_load_config(
    tmp_path: Path,
) -> None:
    values = raw(dataset={"name": "fashion-mnist", "image_size": 4096})
    message = _load_error(_write(tmp_path, yaml.safe_dump(values)))
    assert "would need about" in message and "memory" in message
    assert "dataset.image_size" in message
    # a handful of images still leaves a design whose batch of activations cannot fit
    values["dataset"].update(train_size=10, val_size=10)
    message = _load_error(_write(tmp_path, yaml.safe_dump(values), "b.yaml"))
    assert "batch_size" in message and "would need about" in message


def test_a_design_too_large_for_memory_is_refused_by_load_config(tmp_path: Path) -> None:
    values = raw(dataset={"name": "cifar10"}, space__blocks=[1], space__filters=[1024])
    message = _load_error(_write(tmp_path, yaml.safe_dump(values)))
    assert "B1FL1024" in message and "parameters" in message
    assert "space.filters" in message


def test_shipped_configs_fit_a_small_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import data.memory_budget

    monkeypatch.setattr(data.memory_budget, "_budget", lambda: (2 * 2**30, "a 4 GiB machine"))
    for path in SHIPPED:
        load_config(path)


def test_a_user_error_is_always_one_bounded_line() -> None:
    assert str(UserError("cannot read image /x/a\nb.png\r\x00")) == (
        "cannot read image /x/a\\nb.png\\r\\x00")
    assert len(str(UserError("x" * 100_000))) == 1000


@pytest.mark.parametrize(("batch_norm", "expected"),
                         [("none", False), ("before", True), ("after", True)])
def test_design_memory_counts_batch_norm_only_when_the_design_has_it(
    monkeypatch: pytest.MonkeyPatch, batch_norm: str, expected: bool
) -> None:
    """``Architecture.batch_norm`` is a place ("none" | "before" | "after"), and "none" is a
    truthy string: the estimate must not count batch norm for it."""
    import search.config.footprint as footprint
    from models import Architecture

    seen: list[bool] = []
    real = footprint.thesis_design_size

    def spy(blocks: int, filters: int, fc_units: int | str, has_batch_norm: bool,
            *rest: Any) -> tuple[int, int] | None:
        seen.append(has_batch_norm)
        return real(blocks, filters, fc_units, has_batch_norm, *rest)

    monkeypatch.setattr(footprint, "thesis_design_size", spy)
    architecture = Architecture(blocks=2, filters=4, batch_norm=batch_norm)
    footprint.check_design_memory(architecture, 32, 64, (1, 28, 28), 10, 100, 20)
    assert seen == [expected]
    assert (real(2, 4, 32, True, (1, 28, 28), 10)[0]
            > real(2, 4, 32, False, (1, 28, 28), 10)[0])


def test_dataset_split_is_a_later_key_left_out_of_the_fingerprint_at_its_default() -> None:
    """Studies made before ``dataset.split`` existed keep their fingerprint: absent, or at
    its default (holdout), the new keys change nothing; any other value does."""
    config = parse_config(raw())
    assert config.dataset.split == "holdout"
    assert config.dataset.val_fraction is None and config.dataset.test_fraction is None
    default = parse_config(raw(dataset={"name": "fashion-mnist", "split": "holdout",
                                        "val_fraction": None, "test_fraction": None}))
    assert default.fingerprint() == config.fingerprint()
    for changed in ({"split": "thesis"}, {"val_fraction": 0.2}):
        other = parse_config(raw(dataset={"name": "fashion-mnist", **changed}))
        assert other.fingerprint() != config.fingerprint()
    assert parse_config(raw(dataset__split="THESIS")).dataset.split == "thesis"


@pytest.mark.parametrize(
    ("dataset", "key"),
    [
        ({"name": "cifar10", "split": "thesis", "val_fraction": 0.2}, "dataset.val_fraction"),
        ({"name": "fashion-mnist", "test_fraction": 0.1}, "dataset.test_fraction"),
        ({"name": "eurosat", "split": "thesis", "test_fraction": 0.1}, "dataset.test_fraction"),
        ({"name": "eurosat", "val_fraction": 0.5, "test_fraction": 0.5}, "dataset.val_fraction"),
        ({"name": "mnist", "split": "random"}, "dataset.split"),
        ({"name": "mnist", "val_fraction": 0}, "dataset.val_fraction"),
        ({"name": "mnist", "val_fraction": 1.0}, "dataset.val_fraction"),
    ],
)
def test_split_settings_that_mean_nothing_are_one_line_naming_the_key(
    dataset: dict[str, Any], key: str
) -> None:
    message = error_of(raw(dataset=dataset))
    assert f"config key '{key}'" in message and "\n" not in message


def test_folder_datasets_take_both_fractions() -> None:
    config = parse_config(raw(dataset={"name": "imagefolder:/data/pets", "val_fraction": 0.2,
                                       "test_fraction": 0.1}))
    assert (config.dataset.val_fraction, config.dataset.test_fraction) == (0.2, 0.1)
    thesis = parse_config(raw(dataset={"name": "eurosat", "split": "thesis",
                                       "val_fraction": 0.25}))
    assert thesis.dataset.val_fraction == 0.25


def test_an_exports_dataset_section_passes_the_same_split_rules() -> None:
    from search.config import parse_section

    section = parse_section(DatasetSettings, {"name": "cifar10", "split": "thesis"},
                            "dataset.")
    assert section.split == "thesis"
    with pytest.raises(UserError, match="config key 'dataset.val_fraction'"):
        parse_section(DatasetSettings, {"name": "cifar10", "split": "thesis",
                                        "val_fraction": 0.1}, "dataset.")


def test_shipped_configs_say_which_split_they_use() -> None:
    thesis = load_config(CONFIGS / "cifar10-thesis.yaml")
    assert thesis.raw["dataset"]["split"] == "thesis" and thesis.dataset.split == "thesis"
    assert "protocol" in (CONFIGS / "cifar10-thesis.yaml").read_text()
    assert load_config(CONFIGS / "fashion-mnist.yaml").dataset.split == "holdout"


@pytest.mark.parametrize(
    ("dataset", "sizes"),
    [
        ({"name": "cifar10"}, (45000, 5000)),
        ({"name": "cifar10", "split": "thesis"}, (50000, 10000)),
        ({"name": "cifar10", "val_fraction": 0.2, "val_size": 3000}, (40000, 3000)),
        ({"name": "eurosat"}, (18900, 4050)),
        ({"name": "eurosat", "split": "thesis"}, (21600, 5400)),
    ],
)
def test_the_memory_estimate_counts_the_splits_the_search_holds(
    monkeypatch: pytest.MonkeyPatch, dataset: dict[str, Any], sizes: tuple[int, int]
) -> None:
    """The search holds train and validation only (never the test split)."""
    import search.config.footprint as footprint

    seen: list[tuple[int | None, int | None]] = []
    monkeypatch.setattr(footprint, "check_space_memory",
                        lambda config, shape, classes, n_train, n_val:
                        seen.append((n_train, n_val)))
    footprint.check_config_memory(parse_config(raw(dataset=dataset)))
    assert seen == [sizes]
