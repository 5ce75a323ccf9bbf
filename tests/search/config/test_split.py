"""The dataset split keys (split, val_fraction, test_fraction): what they mean together,
for the shipped configs, exports and the memory estimate."""

from __future__ import annotations

from typing import Any

import pytest

from search.config import (
    DatasetSettings,
    load_config,
    parse_config,
)
from search.errors import UserError
from tests.search.config.conftest import (
    CONFIGS,
    error_of,
    raw,
)


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
