"""One sampled design with everything needed to rebuild and retrain it, as plain data.

The builder, LRRT and trainer consume this; none of them imports Optuna.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from models import Architecture, config_name
from search.config import DatasetSettings, LRRTSettings, TrainSettings


@dataclass(frozen=True)
class TrialConfig:
    dataset: DatasetSettings
    architecture: Architecture
    optimizer: str
    lr_range: tuple[float, float]
    batch_size: int
    seed: int
    lrrt: LRRTSettings
    train: TrainSettings
    data_seed: int = 0
    """Seed of the dataset's subsets and splits: the study's, so a retrain sees the same
    train/validation images as the search did (``seed`` varies per trial and repeat)."""

    @property
    def name(self) -> str:
        return config_name(self.architecture.blocks, self.architecture.filters, self.optimizer)

    def with_seed(self, seed: int) -> TrialConfig:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["lr_range"] = list(self.lr_range)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialConfig:
        return cls(
            dataset=DatasetSettings(**values["dataset"]),
            architecture=Architecture.from_dict(values["architecture"]),
            optimizer=values["optimizer"],
            lr_range=(float(values["lr_range"][0]), float(values["lr_range"][1])),
            batch_size=int(values["batch_size"]),
            seed=int(values["seed"]),
            lrrt=LRRTSettings(**values["lrrt"]),
            train=TrainSettings(**values["train"]),
            data_seed=int(values.get("data_seed", 0)),
        )
