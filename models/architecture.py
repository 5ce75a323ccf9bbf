"""The architecture of one candidate CNN as plain data, and the thesis' naming scheme.

Keeping the design a frozen dataclass means the best model is rebuilt from an exported
configuration alone: the builder never sees Optuna.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

FC_UNITS_THESIS = "thesis"
"""``fc_units`` value for the thesis' rule: each hidden FC layer has as many units as the
flattened feature map (VGG inspired)."""


class ArchitectureError(ValueError):
    """The design cannot be built for this input, e.g. more pooling than pixels."""


@dataclass(frozen=True)
class Architecture:
    """A thesis-style CNN: ``blocks`` of conv-conv-maxpool, then two FC layers.

    ``filters`` is F0, the width of block 0; block ``n`` has ``F0 * 2**n`` filters.
    ``fc_units`` is ``"thesis"`` (m = flattened size) or a fixed positive number.
    ``l2`` is the Keras-style kernel penalty ``l2 * sum(w**2)`` on every conv kernel.
    """

    blocks: int
    filters: int
    fc_units: int | str = FC_UNITS_THESIS
    batch_norm: bool = False
    dropout: float = 0.0
    l2: float = 0.01

    def __post_init__(self) -> None:
        if not 1 <= self.blocks <= 8:
            raise ArchitectureError(f"blocks must be between 1 and 8, got {self.blocks}")
        if self.filters < 1:
            raise ArchitectureError(f"filters must be a positive integer, got {self.filters}")
        if self.fc_units != FC_UNITS_THESIS and (
            not isinstance(self.fc_units, int) or self.fc_units < 1
        ):
            raise ArchitectureError(
                f"fc_units must be '{FC_UNITS_THESIS}' or a positive integer, "
                f"got {self.fc_units!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ArchitectureError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.l2 < 0:
            raise ArchitectureError(f"l2 must be >= 0, got {self.l2}")

    def feature_map(self, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(channels, height, width) after the last block; raises if the image vanishes."""
        _, height, width = input_shape
        for block in range(self.blocks):
            height, width = height // 2, width // 2
            if height < 1 or width < 1:
                raise ArchitectureError(
                    f"{self.blocks} blocks cannot be built on {input_shape[1]}x{input_shape[2]} "
                    f"inputs: block {block + 1} pools the image below 1x1 "
                    f"(at most {max_blocks(input_shape)} blocks fit)"
                )
        return self.filters * 2 ** (self.blocks - 1), height, width

    def hidden_units(self, input_shape: tuple[int, int, int]) -> int:
        """Units of each hidden FC layer (the thesis' m, or the fixed number)."""
        if self.fc_units == FC_UNITS_THESIS:
            channels, height, width = self.feature_map(input_shape)
            return channels * height * width
        return int(self.fc_units)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Architecture:
        return cls(**values)


def max_blocks(input_shape: tuple[int, int, int]) -> int:
    """Largest number of 2x2 poolings that leave at least one pixel."""
    side = min(input_shape[1], input_shape[2])
    count = 0
    while side >= 2:
        side //= 2
        count += 1
    return count


_OPTIMIZER_LABELS = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adamw": "AdamW"}


def config_name(blocks: int, filters: int, optimizer: str) -> str:
    """The thesis' table label, e.g. ``config_name(2, 32, "adam") == "B2FL32Adam"``."""
    label = _OPTIMIZER_LABELS.get(optimizer.lower(), optimizer.capitalize())
    return f"B{blocks}FL{filters}{label}"
