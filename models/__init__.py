"""CNN designs as data (``Architecture``) and the one builder that turns any family into a
``CNN`` module (``build_cnn``)."""

from models.architecture import (
    BACKBONES,
    FAMILIES,
    FAMILY_FIELDS,
    FC_UNITS_THESIS,
    VGG_STAGES,
    WEIGHTS,
    Architecture,
    ArchitectureError,
    config_name,
    design_name,
    max_blocks,
)
from models.builder import FAMILY_BUILDERS, build_cnn, count_parameters
from models.families.pretrained import PretrainedWeightsUnavailable
from models.layers import ACTIVATIONS, BATCH_NORM_PLACES
from models.network import CNN, ThesisCNN

__all__ = [
    "ACTIVATIONS",
    "BACKBONES",
    "BATCH_NORM_PLACES",
    "CNN",
    "FAMILIES",
    "FAMILY_BUILDERS",
    "FAMILY_FIELDS",
    "FC_UNITS_THESIS",
    "VGG_STAGES",
    "WEIGHTS",
    "Architecture",
    "ArchitectureError",
    "PretrainedWeightsUnavailable",
    "ThesisCNN",
    "build_cnn",
    "config_name",
    "count_parameters",
    "design_name",
    "max_blocks",
]
