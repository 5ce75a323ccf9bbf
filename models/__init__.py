"""CNN designs as data (``Architecture``) and the thesis builder that turns them into modules."""

from models.architecture import (
    FC_UNITS_THESIS,
    Architecture,
    ArchitectureError,
    config_name,
    max_blocks,
)
from models.builder import ThesisCNN, build_cnn, count_parameters

__all__ = [
    "FC_UNITS_THESIS",
    "Architecture",
    "ArchitectureError",
    "ThesisCNN",
    "build_cnn",
    "config_name",
    "count_parameters",
    "max_blocks",
]
