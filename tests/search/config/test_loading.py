"""Reading a YAML search configuration: shipped files parse, defaults fill what is left out,
every mistake names its key and what is allowed; the schema is the settings dataclasses."""

from __future__ import annotations

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
    override_keys,
    parse_config,
)
from search.config.settings import config_keys, is_required
from search.errors import UserError
from tests.search.config.conftest import (
    CONFIGS,
    MINIMAL,
    SHIPPED,
    error_of,
    raw,
)


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


def test_set_overrides_keys_as_the_file_would_set_them() -> None:
    config = parse_config(raw())
    assert config.train.precision == "auto" and config.train.compile == "off"
    changed = override_keys(config, ["train.precision=BF16", "train.compile=reduce-overhead",
                                     "lrrt.steps=40", "seed=3"])
    assert changed.train.precision == "bf16" and changed.train.compile == "reduce-overhead"
    assert changed.lrrt.steps == 40 and changed.seed == 3
    assert changed.space == config.space and changed.raw["train"]["precision"] == "BF16"
    assert config.train.precision == "auto"  # the config given is left as it was
    assert override_keys(config, []) is config


@pytest.mark.parametrize(("assignment", "message"), [
    ("space.blocks=[2]", "--set space.blocks: the search space is the config file's"),
    ("filters=4", "--set filters: the search space is the config file's"),
    ("train.precision=fp8", "config key 'train.precision': expected one of auto, fp32, bf16, "
                            "fp16, got 'fp8'"),
    ("train.compile=max-autotune", "config key 'train.compile': expected one of off, default, "
                                   "reduce-overhead"),
    ("train.nope=1", "config key 'train.nope' is unknown"),
    ("train.precision", "--set expects key=value"),
    ("train..precision=bf16", "--set expects key=value"),
    ("train.epochs=[1", "--set train.epochs: cannot parse value"),
])
def test_set_refuses_what_the_file_would_refuse_in_one_line(assignment: str,
                                                            message: str) -> None:
    with pytest.raises(UserError) as raised:
        override_keys(parse_config(raw()), [assignment])
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_compile_off_reads_as_yaml_writes_it() -> None:
    """YAML 1.1 reads a bare ``off`` as false: ``train.compile: off`` means off."""
    assert parse_config(yaml.safe_load(
        "study: x\ndataset: {name: fashion-mnist}\nspace: {optimizer: [adam], "
        "lr_range: [[1.0e-4, 1.0e-2]]}\ntrain: {compile: off}\n")).train.compile == "off"
    assert override_keys(parse_config(raw()), ["train.compile=off"]).train.compile == "off"
    assert override_keys(parse_config(raw()), ["train.compile=true"]).train.compile == "default"
