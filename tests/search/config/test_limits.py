"""Every number finite and bounded, every text one short line, and what would not fit in
memory refused before anything is allocated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from search.config import (
    load_config,
)
from search.errors import UserError
from tests.search.config.conftest import (
    SHIPPED,
    error_of,
    load_error,
    raw,
    write_file,
)


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
    message = load_error(write_file(tmp_path, yaml.safe_dump(values)))
    assert "would need about" in message and "memory" in message
    assert "dataset.image_size" in message
    # a handful of images still leaves a design whose batch of activations cannot fit
    values["dataset"].update(train_size=10, val_size=10)
    message = load_error(write_file(tmp_path, yaml.safe_dump(values), "b.yaml"))
    assert "batch_size" in message and "would need about" in message


def test_a_design_too_large_for_memory_is_refused_by_load_config(tmp_path: Path) -> None:
    values = raw(dataset={"name": "cifar10"}, space__blocks=[1], space__filters=[1024])
    message = load_error(write_file(tmp_path, yaml.safe_dump(values)))
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


@pytest.mark.parametrize("batch_norm", ["before", "after"])
def test_design_memory_counts_batch_norm_only_when_the_design_has_it(batch_norm: str) -> None:
    """``Architecture.batch_norm`` is a place ("none" | "before" | "after"), and "none" is a
    truthy string: the estimate must count batch norm for the two places only."""
    from models import Architecture
    from models.footprint import design_size

    def size(place: str) -> tuple[int, int]:
        measured = design_size(Architecture(blocks=2, filters=4, fc_units=32,
                                            batch_norm=place), (1, 28, 28), 10)
        return measured.parameters, measured.activations

    with_norm, without = size(batch_norm), size("none")
    assert with_norm[0] > without[0] and with_norm[1] > without[1]
