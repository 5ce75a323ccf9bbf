"""A torchvision ResNet backbone (seed 001's transfer learning: ResNet-50), its classifier
replaced by one linear layer for ``num_classes`` (after ``dropout`` when > 0).

``weights="imagenet"`` loads torchvision's ImageNet weights (downloaded once into torch's
hub cache; the new classifier is Glorot-initialised from the seed), ``"none"`` gives the
same network with every conv and linear layer Glorot-initialised from the seed. Grey
images are repeated to three channels. The backbone keeps its ImageNet stem (7x7 stride-2
conv and max pool): small images end as a 1x1 map.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.architecture import Architecture, ArchitectureError
from models.layers import RepeatChannels, glorot_uniform, linear
from models.network import CNN


class PretrainedWeightsUnavailable(ArchitectureError):
    """The ImageNet weights could not be downloaded (offline machine, blocked network)."""


def build(architecture: Architecture, input_shape: tuple[int, int, int], num_classes: int,
          seed: int) -> CNN:
    # Imported here, not at the top: torchvision takes a while to import and only this
    # family needs it.
    import torchvision

    backbone = str(architecture.backbone)
    constructor = getattr(torchvision.models, backbone)
    state = None
    if architecture.weights == "imagenet":
        state = _imagenet_state(torchvision.models.get_model_weights(backbone).DEFAULT,
                                backbone)
    # torchvision initialises the layers from the global RNG: fork it, so the caller's
    # stream is untouched (the weights are replaced below anyway).
    with torch.random.fork_rng(devices=[]):
        net = constructor(weights=None)
    if state is not None:
        net.load_state_dict(state)

    grey: list[nn.Module] = [RepeatChannels(3)] if input_shape[0] == 1 else []
    features = nn.Sequential(*grey, net.conv1, net.bn1, net.relu, net.maxpool, net.layer1,
                             net.layer2, net.layer3, net.layer4, net.avgpool)
    head: list[nn.Module] = [nn.Dropout(architecture.dropout)] if architecture.dropout else []
    classifier = nn.Sequential(*head, linear(net.fc.in_features, num_classes))
    model = CNN(features, classifier, l2=architecture.l2, l1=architecture.l1)
    glorot_uniform(model if state is None else classifier, seed)
    return model


def _imagenet_state(weights: Any, backbone: str) -> dict[str, Any]:
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except OSError as error:  # URLError, HTTPError, timeouts, a read-only cache
        reason = str(getattr(error, "reason", None) or error).strip().splitlines()
        raise PretrainedWeightsUnavailable(
            f"cannot download the ImageNet weights of {backbone} ({weights}, {weights.url}): "
            f"{reason[0] if reason else type(error).__name__}; run once with network access "
            f"(torchvision caches them under {torch.hub.get_dir()}/checkpoints) or set "
            f"weights: none"
        ) from error
