"""A design's identity: what makes two trials one design.

A design is what the search space chose for a trial (``TrialConfig.to_dict``: the
architecture, the optimizer and its parameters, the LR range, the batch size, the schedule,
the batch selection, the input normalisation and augmentation), not the run: its seeds, and
the settings every trial of a study shares (dataset, range test, training). Another run
seed is another run of the same design. ``repeats: skip`` finds a design sampled again by it
(``search.service.repeats``), ``export`` lists each design once, and the benchmarks key
their designs by it, whatever the epochs or data sizes of the run that measured them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

NOT_THE_DESIGN = ("seed", "data_seed", "dataset", "lrrt", "train")
"""The fields of a trial config that say how and on what a design ran, not what it is."""


def design_key(trial_config: Mapping[str, Any]) -> str:
    """A short, stable id of the design ``trial_config`` describes; '' for a trial that
    recorded none."""
    if not trial_config:
        return ""
    design = {name: value for name, value in trial_config.items() if name not in NOT_THE_DESIGN}
    text = json.dumps(design, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
