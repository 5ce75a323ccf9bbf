"""Opening a study again: its budget and seed may change, any other key is refused by name
(studies made by older versions too), its images stay those it was created with, and its
objective is named for optuna-dashboard."""

from __future__ import annotations

import io
import shutil
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml

from search.config import parse_config
from search.errors import UserError
from search.method import prepared_data
from search.method.lrrt.curve import WEIGHTS_STILL
from search.method.pruner import GateRules
from search.record import STUDY_CONFIG, STUDY_FINGERPRINT, TrialRecord
from search.service import local_search
from search.service import study as study_module
from search.service.study import open_search_study, process_sampler_seed, study_data_seed
from tests.conftest import ROOT, worker_config, write_brightness_folder

LEGACY = ROOT / "tests" / "fixtures" / "legacy_study"


def legacy_raw(**changes: Any) -> dict[str, Any]:
    """The YAML the legacy study was made with, ``section__key=value`` changed."""
    raw = yaml.safe_load((LEGACY / "legacy.yaml").read_text())
    for name, value in changes.items():
        section, _, key = name.partition("__")
        if key:
            raw[section][key] = value
        else:
            raw[section] = value
    return raw


@pytest.fixture
def legacy_storage(tmp_path: Path) -> optuna.storages.RDBStorage:
    """A copy of the study written by an older cnnsearch (its fingerprint hashes n_trials
    and seed too)."""
    shutil.copy(LEGACY / "study.db", tmp_path / "study.db")
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")


@pytest.fixture
def storage(tmp_path: Path) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'new.db'}")


def refusal(study_name: str, storage: optuna.storages.BaseStorage, raw: dict) -> str:
    """The one-line refusal, after checking the study was left as it was."""
    before = optuna.load_study(study_name=study_name, storage=storage)
    attrs, trials = dict(before.user_attrs), len(before.trials)
    with pytest.raises(UserError) as raised:
        open_search_study(study_name, storage, parse_config(raw))
    after = optuna.load_study(study_name=study_name, storage=storage)
    assert dict(after.user_attrs) == attrs and len(after.trials) == trials
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"study '{study_name}' was created with a different configuration")
    return message


def test_a_legacy_study_opens_with_another_budget_and_seed(legacy_storage) -> None:
    stored = optuna.load_study(study_name="legacy", storage=legacy_storage).user_attrs
    for raw in (legacy_raw(), legacy_raw(n_trials=40), legacy_raw(n_trials=None, seed=5)):
        study = open_search_study("legacy", legacy_storage, parse_config(raw))
        assert len(study.trials) == 12
        assert study.user_attrs[STUDY_FINGERPRINT] == stored[STUDY_FINGERPRINT]


def test_a_legacy_study_refused_names_the_key_that_differs(legacy_storage) -> None:
    raw = legacy_raw(n_trials=40, seed=3,
                     train={"epochs": 3, "step_size_epochs": 2, "sgd_momentum": 0.9})
    message = refusal("legacy", legacy_storage, raw)
    assert "(train.epochs: 2 stored, 3 new)" in message
    assert "n_trials" not in message and "seed" not in message


def test_a_new_study_opens_with_another_budget_and_refuses_another_space(storage) -> None:
    config = parse_config(legacy_raw(study="s"))
    made = open_search_study("s", storage, config)
    assert made.user_attrs[STUDY_FINGERPRINT] == config.fingerprint()
    again = open_search_study("s", storage, parse_config(legacy_raw(study="s", n_trials=99,
                                                                    seed=11)))
    assert again.user_attrs[STUDY_FINGERPRINT] == made.user_attrs[STUDY_FINGERPRINT]
    space = dict(legacy_raw()["space"], blocks=[3], optimizer=["adam"])
    message = refusal("s", storage, legacy_raw(study="s", space=space, n_trials=99))
    assert ('(space.blocks: [1, 2] stored, [3] new; '
            'space.optimizer: ["adam", "sgd"] stored, ["adam"] new)') in message


@pytest.mark.parametrize("stored_config", [None, {"study": "bare"}])
def test_without_a_readable_stored_config_the_refusal_says_so(storage, stored_config) -> None:
    """A study with a fingerprint but no config (or one this version refuses): the keys
    cannot be named, and the message says that instead."""
    study = optuna.create_study(study_name="bare", storage=storage, direction="maximize")
    study.set_user_attr(STUDY_FINGERPRINT, "0123456789abcdef")
    if stored_config is not None:
        study.set_user_attr(STUDY_CONFIG, stored_config)
    message = refusal("bare", storage, legacy_raw(study="bare"))
    assert "stores no configuration this version can read, so the keys cannot be named" \
        in message


def test_a_single_objective_study_names_its_metric(tmp_path: Path, storage) -> None:
    open_search_study("s", storage, parse_config(legacy_raw(study="s")))
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert optuna.load_study(study_name="s", storage=url).metric_names == ["val_accuracy"]
    system_attrs = storage.get_study_system_attrs(storage.get_study_id_from_name("s"))
    open_search_study("s", storage, parse_config(legacy_raw(study="s")))  # idempotent
    assert storage.get_study_system_attrs(storage.get_study_id_from_name("s")) == system_attrs
    assert optuna.load_study(study_name="s", storage=url).metric_names == ["val_accuracy"]


def test_a_study_made_before_metric_names_is_named_when_opened_again(legacy_storage) -> None:
    assert optuna.load_study(study_name="legacy", storage=legacy_storage).metric_names is None
    open_search_study("legacy", legacy_storage, parse_config(legacy_raw()))
    assert optuna.load_study(study_name="legacy",
                             storage=legacy_storage).metric_names == ["val_accuracy"]


def test_a_new_seed_searches_the_images_the_study_was_created_with(
        tmp_path: Path, storage, monkeypatch) -> None:
    """A study's images are fixed when it is made: a search with another seed draws new
    designs and run seeds (its sampler's seed differs) but trains and validates on the same
    images, and its trials record that data seed, so export and retrain use them too."""
    folder = write_brightness_folder(tmp_path / "images", images_per_class=30)
    config = parse_config(worker_config(folder, "seeded", epochs=1))
    val_images, sampler_seeds = [], []

    def loaded(*args: Any, **kwargs: Any) -> prepared_data.DataOnDevice:
        data = prepared_data.prepare_data(*args, **kwargs)
        val_images.append(data.dataset.val_images.clone())
        return data

    def sampler(name: str, *, seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
        sampler_seeds.append(seed)  # the last one per search is the sampler it searches with
        return make_sampler(name, seed=seed, **kwargs)

    make_sampler = study_module.make_sampler
    monkeypatch.setattr(local_search, "prepare_data", loaded)
    monkeypatch.setattr(study_module, "make_sampler", sampler)
    for seed in (0, 5):
        local_search.run_search(replace(config, seed=seed), study_name="seeded", storage=storage,
                                n_trials=1, timeout=None, device=torch.device("cpu"),
                                artifact_dir=None, out=io.StringIO())
    trials = [TrialRecord.from_frozen(t).trial_config
              for t in optuna.load_study(study_name="seeded", storage=storage).trials]
    assert [t["data_seed"] for t in trials] == [0, 0]
    assert trials[1]["seed"] == 5 * 100_003 + 1  # run seeds follow the new seed
    assert torch.equal(val_images[0], val_images[1])
    other = prepared_data.load_data(config.dataset, 5).val_images
    assert not torch.equal(val_images[0], other)  # seed 5 alone would pick other images
    assert sampler_seeds[-1] == process_sampler_seed(5, 1) != process_sampler_seed(0, 0)


def test_the_data_seed_is_the_one_a_study_was_created_with(storage) -> None:
    """``search --seed`` at creation is the seed stored; a stored config without a seed
    leaves the config's own."""
    config = parse_config(legacy_raw(study="s"))
    assert study_data_seed("s", storage, replace(config, seed=3)) == 3  # no study yet
    open_search_study("s", storage, replace(config, seed=3))
    assert study_data_seed("s", storage, replace(config, seed=7)) == 3
    bare = optuna.create_study(study_name="bare", storage=storage, direction="maximize")
    bare.set_user_attr(STUDY_CONFIG, {k: v for k, v in legacy_raw().items() if k != "seed"})
    assert study_data_seed("bare", storage, replace(config, seed=7)) == 7


def test_the_pruner_takes_the_configs_gate_settings() -> None:
    raw = legacy_raw(study="s")
    raw["pruner"] = {**raw.get("pruner", {}), "weights_still": 0.01, "peer_rejection": True}
    rules = study_module.build_pruner(parse_config(raw)).rules
    assert rules.weights_still == 0.01 and rules.peer_rejection
    default = study_module.build_pruner(parse_config(legacy_raw(study="s"))).rules
    assert default.weights_still == WEIGHTS_STILL


def test_the_gate_settings_travel_whole_and_their_defaults_are_the_gate_s() -> None:
    """Every ``GateRules`` field is a ``pruner`` key of that name; a config that sets none
    gives the gate's own defaults, and every key set reaches the pruner."""
    raw: dict[str, Any] = {"study": "s", "dataset": {"name": "fashion-mnist"},
                           "space": {"optimizer": ["adam"], "lr_range": [[1.0e-4, 1.0e-2]]}}
    assert parse_config(raw).pruner.gate_rules() == GateRules()
    chosen = {"chance_margin": 0.3, "percentile": 50.0, "peer_margin": 0.1,
              "warmup_trials": 7, "prune_unstable": True, "min_usable_fraction": 0.2,
              "peer_rejection": True, "chance_needs_limit": False, "weights_still": 0.02,
              "promotion_eta": 3}
    assert set(chosen) == {rule.name for rule in fields(GateRules)}
    raw["pruner"] = chosen
    assert study_module.build_pruner(parse_config(raw)).rules == GateRules(**chosen)
