"""The architecture of one candidate CNN as plain data, the families it can name, and the
table labels.

Keeping the design a frozen dataclass means the best model is rebuilt from an exported
configuration alone: the builder never sees Optuna.

``family`` picks the network; the fields that shape it depend on the family, the rest
(``activation``, ``batch_norm``, ``dropout``, ``l2``, ``l1``) apply to every family:

===========  ===========================================  ==============================
family       its fields (default)                         label
===========  ===========================================  ==============================
thesis       blocks, filters (both required),             ``B2FL32`` (thesis §3.2)
             fc_units (``"thesis"``)
lenet5       none                                         ``LeNet5``
vgg          depth (11; 11|13|16|19), filters (8: VGG's   ``VGG11W8``
             64 / 8), fc_units (``"thesis"``)
resnet18     filters (64)                                 ``ResNet18W64``
pretrained   backbone (``resnet50``; or ``resnet18``),    ``PreResNet50`` (ImageNet),
             weights (``imagenet``; or ``none``)          ``ScratchResNet50`` (random)
===========  ===========================================  ==============================

A field that does not apply to the family must be left ``None``; a ``None`` that applies is
replaced by the family's default in ``__post_init__``, so equal designs compare equal and
``to_dict`` always writes the values the network was built with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from models.layers import ACTIVATIONS, BATCH_NORM_PLACES

FC_UNITS_THESIS = "thesis"
"""``fc_units`` value for the thesis' rule: each hidden FC layer has as many units as the
flattened feature map (VGG inspired)."""

THESIS = "thesis"
LENET5 = "lenet5"
VGG = "vgg"
RESNET18 = "resnet18"
PRETRAINED = "pretrained"

VGG_STAGES: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
"""VGG depth -> 3x3 convs in each of its five stages (widths F, 2F, 4F, 8F, 8F)."""

BACKBONES: dict[str, int] = {"resnet50": 2048, "resnet18": 512}
"""torchvision backbones of the ``pretrained`` family -> width of their pooled features."""

WEIGHTS = ("imagenet", "none")

FAMILY_FIELDS: dict[str, dict[str, Any]] = {
    THESIS: {"blocks": None, "filters": None, "fc_units": FC_UNITS_THESIS},
    LENET5: {},
    VGG: {"depth": 11, "filters": 8, "fc_units": FC_UNITS_THESIS},
    RESNET18: {"filters": 64},
    PRETRAINED: {"backbone": "resnet50", "weights": "imagenet"},
}
"""Family -> the family-specific fields that apply to it and their defaults (``None``:
required). The keys are the families, in the order the docs list them."""

FAMILIES = tuple(FAMILY_FIELDS)

_SPECIFIC_FIELDS = ("blocks", "filters", "fc_units", "depth", "backbone", "weights")

_BATCH_NORM_DEFAULT = {RESNET18: "before", PRETRAINED: "before"}
"""Families whose own design has batch norm (before the activation); the others have none
by default, as the thesis."""

_FIXED_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    PRETRAINED: {"batch_norm": ("before",), "activation": ("relu",)},
}
"""Dimensions a family cannot vary: a torchvision backbone keeps its own layers."""


class ArchitectureError(ValueError):
    """The design is invalid or cannot be built for this input, e.g. more pooling than
    pixels."""


@dataclass(frozen=True)
class Architecture:
    """One CNN design; see the module docstring for the families and their fields.

    Thesis family: ``blocks`` of conv-conv-maxpool; ``filters`` is F0, the width of block 0,
    block ``n`` has ``F0 * 2**n`` filters. ``fc_units`` is ``"thesis"`` (m = flattened size)
    or a fixed positive number of units in each of the two hidden FC layers (also VGG's).
    ``filters`` is the base width of ``vgg`` and ``resnet18`` too (their first stage).

    Every family: ``activation`` (a name in ``models.ACTIVATIONS``, ``"relu"``);
    ``batch_norm`` ``"none" | "before" | "after"`` the activation (booleans accepted:
    ``True`` is ``"before"``, what it has always built; default ``"none"``, ``"before"`` for
    resnet18 and pretrained); ``dropout`` after each hidden FC layer (before the output
    layer for the ResNets); ``l2`` the Keras-style kernel penalty ``l2 * sum(w**2)`` and
    ``l1`` the penalty ``l1 * sum(|w|)``, both on every conv kernel (``CNN.l1_penalty``).
    """

    blocks: int | None = None
    filters: int | None = None
    fc_units: int | str | None = None
    batch_norm: str | bool | None = None
    dropout: float = 0.0
    l2: float = 0.01
    family: str = THESIS
    activation: str = "relu"
    l1: float = 0.0
    depth: int | None = None
    backbone: str | None = None
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILY_FIELDS:
            raise ArchitectureError(
                f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        self._resolve_family_fields()
        self._resolve_batch_norm()
        self._check_values()

    def _resolve_family_fields(self) -> None:
        applies = FAMILY_FIELDS[self.family]
        for name in _SPECIFIC_FIELDS:
            value = getattr(self, name)
            if name not in applies:
                if value is not None:
                    families = [f for f, names in FAMILY_FIELDS.items() if name in names]
                    raise ArchitectureError(
                        f"{name} does not apply to the {self.family} family (only to "
                        f"{', '.join(families)}); leave it unset, got {value!r}")
            elif value is None:
                if applies[name] is None:
                    raise ArchitectureError(f"{name} is required for the {self.family} family")
                object.__setattr__(self, name, applies[name])

    def _resolve_batch_norm(self) -> None:
        value = self.batch_norm
        if value is None:
            value = _BATCH_NORM_DEFAULT.get(self.family, "none")
        elif isinstance(value, bool):  # the thesis' switch: True has always meant before
            value = "before" if value else "none"
        if value not in BATCH_NORM_PLACES:
            raise ArchitectureError(
                f"batch_norm must be one of {', '.join(BATCH_NORM_PLACES)} (or true = before, "
                f"false = none), got {self.batch_norm!r}")
        object.__setattr__(self, "batch_norm", value)

    def _check_values(self) -> None:
        if self.blocks is not None and (not isinstance(self.blocks, int)
                                        or not 1 <= self.blocks <= 8):
            raise ArchitectureError(f"blocks must be between 1 and 8, got {self.blocks}")
        if self.filters is not None and (not isinstance(self.filters, int) or self.filters < 1):
            raise ArchitectureError(f"filters must be a positive integer, got {self.filters}")
        if self.fc_units is not None and self.fc_units != FC_UNITS_THESIS and (
            not isinstance(self.fc_units, int) or self.fc_units < 1
        ):
            raise ArchitectureError(
                f"fc_units must be '{FC_UNITS_THESIS}' or a positive integer, "
                f"got {self.fc_units!r}"
            )
        if self.depth is not None and self.depth not in VGG_STAGES:
            raise ArchitectureError(
                f"depth must be one of {', '.join(map(str, VGG_STAGES))}, got {self.depth!r}")
        if self.backbone is not None and self.backbone not in BACKBONES:
            raise ArchitectureError(
                f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.weights is not None and self.weights not in WEIGHTS:
            raise ArchitectureError(
                f"weights must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")
        if self.activation not in ACTIVATIONS:
            raise ArchitectureError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        for name, allowed in _FIXED_CHOICES.get(self.family, {}).items():
            if getattr(self, name) not in allowed:
                raise ArchitectureError(
                    f"{name} must be {' or '.join(allowed)} for the {self.family} family "
                    f"(its backbone keeps its own layers), got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ArchitectureError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.l2 < 0:
            raise ArchitectureError(f"l2 must be >= 0, got {self.l2}")
        if self.l1 < 0:
            raise ArchitectureError(f"l1 must be >= 0, got {self.l1}")

    # -- geometry --------------------------------------------------------------------------

    def feature_map(self, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(channels, height, width) the classifier flattens; raises ``ArchitectureError``
        when the design does not fit the input (the image pooled below 1x1, LeNet-5 on
        fewer than 12x12 pixels, a backbone fed neither 1 nor 3 channels)."""
        _check_input_shape(input_shape)
        if self.family == THESIS:
            return _thesis_feature_map(self, input_shape)
        if self.family == LENET5:
            return _lenet5_feature_map(input_shape)
        if self.family == VGG:
            return _vgg_feature_map(self, input_shape)
        if self.family == RESNET18:
            return 8 * int(self.filters or 0), 1, 1  # global average pooling
        if input_shape[0] not in (1, 3):
            raise ArchitectureError(
                f"the pretrained family takes 1-channel (repeated to 3) or 3-channel images, "
                f"got {input_shape[0]} channels")
        return BACKBONES[str(self.backbone)], 1, 1

    def check_fits(self, input_shape: tuple[int, int, int]) -> None:
        """Raise ``ArchitectureError`` before any allocation when the design cannot be built
        on ``input_shape`` (channels, height, width)."""
        self.feature_map(input_shape)

    def hidden_units(self, input_shape: tuple[int, int, int]) -> int:
        """Units of each hidden FC layer (the thesis' m, or the fixed number); thesis and vgg
        families only (LeNet-5's are 120 and 84, the ResNets have none)."""
        if self.fc_units is None:
            raise ArchitectureError(f"the {self.family} family has no configurable FC layers")
        if self.fc_units == FC_UNITS_THESIS:
            channels, height, width = self.feature_map(input_shape)
            return channels * height * width
        return int(self.fc_units)

    # -- names and serialisation -----------------------------------------------------------

    @property
    def label(self) -> str:
        """The design's name in tables, without the optimizer: ``B2FL32``, ``LeNet5``,
        ``VGG11W8``, ``ResNet18W64``, ``PreResNet50`` (``ScratchResNet50``: no weights)."""
        if self.family == THESIS:
            return f"B{self.blocks}FL{self.filters}"
        if self.family == LENET5:
            return "LeNet5"
        if self.family == VGG:
            return f"VGG{self.depth}W{self.filters}"
        if self.family == RESNET18:
            return f"ResNet18W{self.filters}"
        prefix = "Pre" if self.weights == "imagenet" else "Scratch"
        return f"{prefix}ResNet{str(self.backbone).removeprefix('resnet')}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Architecture:
        """Read a dict ``to_dict`` wrote, or an old one (blocks, filters, fc_units,
        batch_norm as a boolean, dropout, l2: a thesis design)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ArchitectureError(
                f"unknown architecture key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(f.name for f in fields(cls))}")
        return cls(**values)


def _check_input_shape(input_shape: tuple[int, int, int]) -> None:
    if len(input_shape) != 3 or any(not isinstance(n, int) or n < 1 for n in input_shape):
        raise ArchitectureError(
            f"input_shape must be (channels, height, width), positive integers, "
            f"got {input_shape!r}")


def _thesis_feature_map(architecture: Architecture,
                        input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    blocks, filters = int(architecture.blocks or 0), int(architecture.filters or 0)
    _, height, width = input_shape
    for block in range(blocks):
        height, width = height // 2, width // 2
        if height < 1 or width < 1:
            raise ArchitectureError(
                f"{blocks} blocks cannot be built on {input_shape[1]}x{input_shape[2]} "
                f"inputs: block {block + 1} pools the image below 1x1 "
                f"(at most {max_blocks(input_shape)} blocks fit)"
            )
    return filters * 2 ** (blocks - 1), height, width


LENET5_MIN_SIDE = 12
"""conv5 (padding 2) - pool - conv5 - pool leaves one pixel of a 12x12 image."""


def _lenet5_feature_map(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    _, height, width = input_shape
    if min(height, width) < LENET5_MIN_SIDE:
        raise ArchitectureError(
            f"lenet5 cannot be built on {height}x{width} inputs: its second 5x5 conv and "
            f"pool need at least {LENET5_MIN_SIDE}x{LENET5_MIN_SIDE}")
    return 16, (height // 2 - 4) // 2, (width // 2 - 4) // 2


def vgg_pooling_stages(input_shape: tuple[int, int, int]) -> int:
    """How many of VGG's five stages end with a 2x2 max pool: as many as the image allows."""
    return min(len(next(iter(VGG_STAGES.values()))), max_blocks(input_shape))


def _vgg_feature_map(architecture: Architecture,
                     input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    pools = vgg_pooling_stages(input_shape)
    if pools == 0:
        raise ArchitectureError(
            f"vgg cannot be built on {input_shape[1]}x{input_shape[2]} inputs: it needs at "
            f"least 2x2 pixels to pool once")
    height, width = input_shape[1] >> pools, input_shape[2] >> pools
    return 8 * int(architecture.filters or 0), height, width


def max_blocks(input_shape: tuple[int, int, int]) -> int:
    """Largest number of 2x2 poolings that leave at least one pixel."""
    side = min(input_shape[1], input_shape[2])
    count = 0
    while side >= 2:
        side //= 2
        count += 1
    return count


_OPTIMIZER_LABELS = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adamw": "AdamW"}


def optimizer_label(optimizer: str) -> str:
    return _OPTIMIZER_LABELS.get(optimizer.lower(), optimizer.capitalize())


def config_name(blocks: int, filters: int, optimizer: str) -> str:
    """The thesis' table label, e.g. ``config_name(2, 32, "adam") == "B2FL32Adam"``."""
    return f"B{blocks}FL{filters}{optimizer_label(optimizer)}"


def design_name(architecture: Architecture, optimizer: str) -> str:
    """Any family's table label: ``B2FL32Adam`` (as ``config_name``), ``LeNet5Adam``,
    ``VGG11W8SGD``, ``ResNet18W16Adam``, ``PreResNet50Adam``."""
    return f"{architecture.label}{optimizer_label(optimizer)}"
