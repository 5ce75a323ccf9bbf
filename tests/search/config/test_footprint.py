"""The memory estimate covers every family: a space or an export whose design would not fit
is refused with one line before anything is allocated, whatever the family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from search.config import load_config, parse_config
from search.config.footprint import check_config_memory
from search.errors import UserError
from tests.conftest import tiny_config, write_config
from tests.search.test_hostile_inputs import legacy_export, problems_of, run_limited

SIX_GIB = 6 * 2**30


def space(**dimensions: Any) -> dict:
    config = tiny_config(dataset={"name": "cifar10", "train_size": 500, "val_size": 100})
    config["space"].update(dimensions)
    return config


TOO_LARGE = {
    "vgg": (space(architecture=["vgg"], filters=[512], fc_units=[4096]), "VGG11W512",
            "space.filters, space.depth"),
    "vgg-19": (space(architecture=["vgg"], depth=[11, 19], filters=[64, 512], fc_units=[64]),
               "VGG19W512", "space.depth"),
    "resnet18": (space(architecture=["resnet18"], filters=[1024]), "ResNet18W1024",
                 "space.filters"),
    "pretrained": (space(architecture=["pretrained"], backbone=["resnet18", "resnet50"],
                         batch_size=[16384]), "ResNet50", "space.backbone"),
    "lenet5": (space(architecture=["lenet5"], batch_size=[65536]), "LeNet5",
               "space.batch_size"),
    "thesis": (space(blocks=[1], filters=[1024], fc_units=["thesis"]),
               "B1FL1024 with fc_units thesis", "a fixed space.fc_units"),
}


@pytest.fixture
def six_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    import data.memory_budget

    monkeypatch.setattr(data.memory_budget, "_budget", lambda: (SIX_GIB, "a 6 GiB test budget"))


@pytest.mark.parametrize("family", sorted(TOO_LARGE))
def test_every_family_too_large_for_memory_is_refused_naming_the_design(
    six_gib: None, family: str
) -> None:
    raw, design, hint = TOO_LARGE[family]
    with pytest.raises(UserError) as refused:
        check_config_memory(parse_config(raw))
    message = str(refused.value)
    assert f"the design {design}" in message and "parameters) at batch_size" in message
    assert "a 6 GiB test budget" in message and hint in message


@pytest.mark.parametrize("dimensions", [
    {"architecture": ["vgg"], "depth": [19], "filters": [8], "fc_units": [512]},
    {"architecture": ["resnet18"], "filters": [64], "batch_size": [64]},
    {"architecture": ["pretrained"], "backbone": ["resnet50"], "batch_size": [32]},
    {"architecture": ["lenet5", "thesis"], "batch_size": [128]},
])
def test_designs_of_a_usual_size_pass(six_gib: None, dimensions: dict) -> None:
    check_config_memory(parse_config(space(**dimensions)))


def test_the_largest_design_is_picked_across_families(six_gib: None) -> None:
    """A space mixing a small family with a too-large one is refused for the large one."""
    raw = space(architecture=["lenet5", "resnet18"], filters=[4, 1024])
    with pytest.raises(UserError, match="ResNet18W1024"):
        check_config_memory(parse_config(raw))


def test_batch_norm_in_the_space_counts_for_every_family(six_gib: None) -> None:
    """ResNet-18's own batch norm (false means the family default) is measured."""
    from search.config.footprint import _largest_design

    config = parse_config(space(architecture=["resnet18"], filters=[8], batch_norm=[False]))
    architecture, size, _ = _largest_design(config, (3, 32, 32), 10, 100)
    assert architecture.batch_norm == "before" and size.parameters > 0


# --------------------------------------------------------------------------- the real CLI
def test_create_study_refuses_a_vgg_space_too_large_before_any_allocation(
    tmp_path: Path,
) -> None:
    """The issue's case: vgg, 512 filters, 4096 FC units, under a 2 GiB data limit."""
    config = write_config(tmp_path / "vgg.yaml", TOO_LARGE["vgg"][0])
    url = f"sqlite:///{tmp_path / 'study.db'}"
    outcome = run_limited(["create-study", "--study", "vgg", "--config", str(config),
                           "--storage", url, "--artifact-dir", ""])
    assert not problems_of(outcome), outcome.stderr
    assert "VGG11W512" in outcome.stderr and "memory" in outcome.stderr
    assert not (tmp_path / "study.db").exists()


def test_train_refuses_an_export_too_large_before_allocating_it(tmp_path: Path) -> None:
    """The issue's export: VGG-19, 1024 filters, 65,536 FC units (it allocated 24 GB)."""
    document = legacy_export()
    entry = document["configs"][0]["config"]
    entry["architecture"] = {"family": "vgg", "depth": 19, "filters": 1024, "fc_units": 65536,
                             "batch_norm": "none", "dropout": 0.0, "l2": 0.0}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    out = tmp_path / "runs"
    outcome = run_limited(["train", "--from", str(path), "--device", "cpu", "--out", str(out)])
    assert not problems_of(outcome), outcome.stderr
    assert "VGG19W1024" in outcome.stderr and "memory" in outcome.stderr
    assert "architecture.filters" in outcome.stderr
    assert not out.exists()


def test_shipped_configs_still_load() -> None:
    root = Path(__file__).resolve().parents[3] / "configs"
    for path in sorted(root.glob("*.yaml")):
        if "export" not in path.name:
            load_config(path)
