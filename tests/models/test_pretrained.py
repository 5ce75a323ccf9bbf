"""The pretrained family: a torchvision ResNet with a new classifier; random weights here,
ImageNet weights only through a stubbed loader (offline: one clear line)."""

from __future__ import annotations

import socket
import urllib.error
from dataclasses import replace

import pytest
import torch
import torchvision
from torch import nn

from models import (
    Architecture,
    ArchitectureError,
    PretrainedWeightsUnavailable,
    build_cnn,
    count_parameters,
    design_name,
)
from models.layers import RepeatChannels

RESNET18_NONE = Architecture(family="pretrained", backbone="resnet18", weights="none")


def offline(*args: object, **kwargs: object) -> dict:
    """What torch.hub raises on a machine without network."""
    raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))


def test_defaults_are_seed_001s_imagenet_resnet50() -> None:
    architecture = Architecture(family="pretrained")
    assert (architecture.backbone, architecture.weights) == ("resnet50", "imagenet")
    assert (architecture.batch_norm, architecture.activation) == ("before", "relu")
    assert design_name(architecture, "adam") == "PreResNet50Adam"
    assert design_name(replace(architecture, weights="none"), "adam") == "ScratchResNet50Adam"


def test_resnet50_with_random_weights_builds_and_runs() -> None:
    architecture = Architecture(family="pretrained", weights="none")
    model = build_cnn(architecture, (3, 32, 32), 10, seed=0)
    # torchvision's ResNet-50 has 25,557,032 parameters; its 2048 x 1000 classifier becomes
    # 2048 x 10
    assert count_parameters(model) == 25_557_032 - (2048 * 1000 + 1000) + (2048 * 10 + 10)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_grey_images_are_repeated_to_three_channels() -> None:
    model = build_cnn(RESNET18_NONE, (1, 28, 28), 5, seed=0)
    assert isinstance(model.features[0], RepeatChannels)
    assert model.features[1].in_channels == 3
    grey = torch.randn(2, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(grey), model.classifier(torch.flatten(
            model.features[1:](grey.repeat(1, 3, 1, 1)), 1)))
    colour = build_cnn(RESNET18_NONE, (3, 28, 28), 5, seed=0)
    assert not any(isinstance(m, RepeatChannels) for m in colour.modules())


def test_classifier_is_replaced_for_num_classes() -> None:
    model = build_cnn(Architecture(family="pretrained", backbone="resnet18", weights="none",
                                   dropout=0.4), (3, 32, 32), 13, seed=0)
    assert [type(m) for m in model.classifier] == [nn.Dropout, nn.Linear]
    assert (model.classifier[1].in_features, model.classifier[1].out_features) == (512, 13)
    assert not any(isinstance(m, nn.Linear) for m in model.features.modules())


def test_imagenet_weights_offline_give_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(PretrainedWeightsUnavailable) as raised:
        build_cnn(Architecture(family="pretrained"), (3, 32, 32), 10, seed=0)
    assert isinstance(raised.value, ArchitectureError)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert "\n" not in message
    assert "ImageNet weights of resnet50" in message
    assert "ResNet50_Weights.IMAGENET1K_V2" in message
    assert "Name or service not known" in message
    assert "weights: none" in message
    assert "network" in message


def test_imagenet_weights_are_loaded_and_only_the_classifier_is_new(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a stub standing in for the download: the backbone keeps every loaded tensor;
    the new classifier is Glorot-initialised from the seed."""
    torch.manual_seed(0)
    imagenet = torchvision.models.resnet18().state_dict()
    calls: list[tuple[str, dict]] = []

    def download(self: torchvision.models.WeightsEnum, **kwargs: object) -> dict:
        calls.append((str(self), kwargs))
        return imagenet

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", download)
    architecture = Architecture(family="pretrained", backbone="resnet18")
    model = build_cnn(architecture, (3, 32, 32), 10, seed=4)
    assert calls == [("ResNet18_Weights.IMAGENET1K_V1", {"progress": False,
                                                         "check_hash": True})]
    backbone = model.features.state_dict()
    names = ["conv1", "bn1", None, None, "layer1", "layer2", "layer3", "layer4", None]
    for key, value in backbone.items():
        index, rest = key.split(".", 1)
        assert torch.equal(value, imagenet[f"{names[int(index)]}.{rest}"]), key
    assert len(backbone) == len([k for k in imagenet if not k.startswith("fc.")])
    head = model.classifier[0]
    generator = torch.Generator().manual_seed(4)
    expected = nn.init.xavier_uniform_(torch.empty(10, 512), generator=generator)
    assert torch.equal(head.weight.detach(), expected)
    assert torch.count_nonzero(head.bias) == 0


@pytest.mark.parametrize(("values", "named"), [
    ({"activation": "tanh"}, "activation must be relu for the pretrained family"),
    ({"batch_norm": "after"}, "batch_norm must be before for the pretrained family"),
    ({"backbone": "vit_b_16"}, "backbone must be one of resnet50, resnet18"),
    ({"weights": "coco"}, "weights must be one of imagenet, none"),
    ({"filters": 8}, "filters does not apply to the pretrained family"),
])
def test_invalid_pretrained_designs(values: dict, named: str) -> None:
    with pytest.raises(ArchitectureError, match=named):
        Architecture(family="pretrained", **values)


def test_only_one_or_three_channels() -> None:
    with pytest.raises(ArchitectureError, match="got 2 channels"):
        RESNET18_NONE.check_fits((2, 32, 32))
