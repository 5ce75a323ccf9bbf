"""A design's identity: what the space chose, whatever the run seeds and the settings every
trial of a study shares."""

from __future__ import annotations

from search.record import design_key

CONFIG = {
    "dataset": {"name": "fashion-mnist", "download": False}, "optimizer": "adam",
    "architecture": {"family": "thesis", "blocks": 2, "filters": 8}, "lr_range": [1e-4, 1e-2],
    "batch_size": 64, "seed": 7, "data_seed": 0, "lrrt": {"epochs": 8}, "train": {"epochs": 50},
    "schedule": "triangular2", "momentum": None,
}


def test_runs_of_one_design_share_it_whatever_their_seeds_and_study_settings() -> None:
    same = {**CONFIG, "seed": 123, "data_seed": 5, "dataset": {"name": "fashion-mnist",
                                                             "download": True},
            "lrrt": {"epochs": 2}, "train": {"epochs": 3}}
    assert design_key(same) == design_key(CONFIG)
    assert len(design_key(CONFIG)) == 16 and design_key(dict(reversed(CONFIG.items()))) == \
        design_key(CONFIG)


def test_anything_the_space_chose_makes_another_design() -> None:
    for changed in ({"batch_size": 128}, {"optimizer": "sgd"}, {"lr_range": [1e-2, 1e-1]},
                    {"architecture": {**CONFIG["architecture"], "filters": 16}},
                    {"schedule": "constant"}, {"momentum": 0.9}):
        assert design_key({**CONFIG, **changed}) != design_key(CONFIG), changed


def test_a_trial_that_recorded_no_config_has_none() -> None:
    assert design_key({}) == ""
