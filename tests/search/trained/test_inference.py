"""logits_of computes what training's evaluation computed: same batches, same arithmetic,
so the model card and predict count the images train counted."""

from __future__ import annotations

import torch

from data import DeviceBatches
from models import Architecture, build_cnn
from search.method.evaluation import evaluate
from search.trained.inference import logits_of, probabilities


def test_the_same_logits_as_evaluation() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (70, 1, 12, 12), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 3, (70,), generator=generator)
    model = build_cnn(Architecture(blocks=1, filters=2, fc_units=8, batch_norm=True,
                                   dropout=0.5), (1, 12, 12), 3, seed=0)
    model.train()  # logits_of must switch to eval mode (dropout off, running statistics)
    logits = logits_of(model, images, batch_size=16, device=torch.device("cpu"))
    assert not model.training
    _, accuracy = evaluate(model, DeviceBatches(images, labels, batch_size=16, device="cpu",
                                                shuffle=False, seed=0))
    assert int((logits.argmax(1) == labels).sum()) / 70 == accuracy
    with torch.inference_mode():
        direct = model(images[:16].float() / 255 - 0.5)
    assert torch.equal(logits[:16], direct)
    probs = probabilities(logits)
    assert probs.dtype == torch.float64
    assert torch.allclose(probs.sum(1), torch.ones(70, dtype=torch.float64))
