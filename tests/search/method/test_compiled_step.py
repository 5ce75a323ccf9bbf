"""The compiled forward of a trial's steps (``search.method.compiled_step``): off is the model
itself; a backend that fails (in the forward or the backward pass) leaves the trial eager
with one warning and the same numbers; out of memory is not a compile failure; and with
the real compiler (inductor, which needs a C compiler on the CPU) the losses are eager's
within tolerance."""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import replace

import pytest
import torch

import search.method.compiled_step as compiled_step
from search.method.compiled_step import StepForward
from search.method.evaluation import evaluate
from search.method.lrrt.run import run_lrrt
from search.method.precision import Precision
from search.method.recipe import training_run
from search.method.step import Execution, train_step
from search.method.training import train_epochs
from tests.search.method.test_recipe import design


def raising_backend(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]):
    raise RuntimeError("this backend cannot compile anything")


class _FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the compiled backward kernel failed")


def backward_failing_backend(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]):
    """Compiles the forward fine; its backward pass fails, as a lazily compiled one may."""

    def run(*args: torch.Tensor):
        outputs = graph(*args)
        return type(outputs)(_FailingBackward.apply(o) if o.requires_grad else o
                             for o in outputs)

    return run


def oom_backend(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "torch.compile" in r.getMessage()]


def test_off_is_the_model_itself(tiny_model) -> None:
    model = tiny_model()
    forward = StepForward(model, "off")
    images = torch.rand(4, 1, 8, 8)
    assert not forward.compiled and forward.failure is None
    assert torch.equal(forward(images), model(images))
    with pytest.raises(ValueError, match="compile mode must be one of"):
        StepForward(model, "max-autotune")


def test_a_backend_that_raises_falls_back_to_eager_with_one_warning(
        tiny_model, caplog: pytest.LogCaptureFixture) -> None:
    model = tiny_model()
    forward = StepForward(model, "default", backend=raising_backend)
    assert forward.compiled  # compilation is lazy: nothing has failed yet
    images = torch.rand(4, 1, 8, 8)
    with caplog.at_level(logging.WARNING, logger="cnnsearch.trial"):
        first = forward(images)
        model.eval()
        second = forward(images[:3])  # another shape and eval mode: no second warning
    assert torch.equal(first, model.train()(images))
    assert torch.equal(second, model.eval()(images[:3]))
    assert not forward.compiled and "cannot compile anything" in forward.failure
    assert len(warnings_of(caplog)) == 1
    assert "the trial goes on eager" in warnings_of(caplog)[0]


def same_steps(model_factory, backend, steps: int = 3) -> tuple[list[float], list[float]]:
    """Losses of ``steps`` Adam steps, eager and with ``backend``, from the same weights."""
    losses = {}
    for name in ("eager", "compiled"):
        model = model_factory()
        optimizer = torch.optim.Adam(model.parameters(), 1e-2)
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, 1.0)
        mode = "off" if name == "eager" else "default"
        execution = Execution(StepForward(model, mode, backend=backend), Precision("fp32", "cpu"))
        generator = torch.Generator().manual_seed(0)
        losses[name] = []
        for _ in range(steps):
            images = torch.rand(8, 1, 8, 8, generator=generator)
            labels = torch.randint(0, 4, (8,), generator=generator)
            loss, _ = train_step(model, optimizer, scheduler, images, labels,
                                 execution=execution)
            losses[name].append(float(loss))
    return losses["eager"], losses["compiled"]


def test_a_failing_backward_pass_reruns_the_step_eager(tiny_model,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cnnsearch.trial"):
        eager, fallen_back = same_steps(tiny_model, backward_failing_backend)
    assert fallen_back == eager  # the failed step ran again, eager, from the same weights
    assert len(warnings_of(caplog)) == 1
    assert "backward kernel failed" in warnings_of(caplog)[0]


def test_out_of_memory_is_not_a_compile_failure(tiny_model) -> None:
    forward = StepForward(tiny_model(), "default", backend=oom_backend)
    with pytest.raises(torch.OutOfMemoryError, match="Tried to allocate"):
        forward(torch.rand(4, 1, 8, 8))
    assert forward.failure is None  # no fallback: the trial fails as oom


def test_a_trial_whose_compiler_fails_runs_eager_to_the_same_results(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The range test and the training of a design with ``train.compile: default`` and a
    backend that cannot compile: no failed trial, eager's numbers exactly."""
    from data import ImageDataset
    from search.method.prepared_data import DataOnDevice
    from tests.search.method.test_recipe import blocks_images

    images, labels = blocks_images(64, 0)
    val_images, val_labels = blocks_images(32, 1)
    data = DataOnDevice(ImageDataset("blocks", images, labels, val_images, val_labels,
                                     ("0", "1", "2", "3")), torch.device("cpu"),
                        eval_batch_size=32)
    eager = design()
    compiled = replace(eager, train=replace(eager.train, compile="default"))
    results = {}
    monkeypatch.setattr(compiled_step, "COMPILE_BACKEND", raising_backend)
    with caplog.at_level(logging.WARNING, logger="cnnsearch.trial"):
        for name, config in (("eager", eager), ("compiled", compiled)):
            lrrt = run_lrrt(config, data)
            run = training_run(config, data, (1e-3, 1e-2))
            state = run.fit(data.val, epochs=2)
            results[name] = (lrrt.curve.losses, [r.train_loss for r in state.history],
                             [r.val_accuracy for r in state.history])
    assert results["compiled"] == results["eager"]
    assert len(warnings_of(caplog)) == 2  # one per compiled model: the test's, the run's


def has_c_compiler() -> bool:
    return any(shutil.which(name) for name in ("cc", "gcc", "clang"))


@pytest.mark.slow
@pytest.mark.skipif(not has_c_compiler(), reason="torch.compile's inductor backend needs a C "
                    "compiler on the CPU (none of cc, gcc, clang found)")
def test_the_compiled_path_runs_and_gives_eager_s_losses(tiny_data,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    """Real inductor, tiny model: two epochs (equal batches: one compiled shape) and the
    evaluation, compiled; losses within 1e-4 relative of eager's (kernel fusion reorders
    float sums), and no fallback."""
    from models import Architecture, build_cnn

    train, val = tiny_data(n_train=64, n_val=32, batch_size=16)
    histories = {}
    for mode in ("off", "default"):
        model = build_cnn(Architecture(blocks=1, filters=2, fc_units=8), (1, 8, 8), 4, seed=0)
        optimizer = torch.optim.Adam(model.parameters(), 1e-2)
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, 1.0)
        execution = Execution(StepForward(model, mode), Precision("fp32", "cpu"))
        with caplog.at_level(logging.WARNING, logger="cnnsearch.trial"):
            state = train_epochs(model, optimizer, scheduler, train, val, epochs=2,
                                 execution=execution)
        assert execution.forward.compiled == (mode == "default"), execution.forward.failure
        histories[mode] = state.history + [evaluate(model, val, execution)]
    assert not warnings_of(caplog)
    eager, compiled = histories["off"], histories["default"]
    for before, after in zip(eager[:-1], compiled[:-1], strict=True):
        assert after.train_loss == pytest.approx(before.train_loss, rel=1e-4)
        assert after.val_loss == pytest.approx(before.val_loss, rel=1e-4)
    assert compiled[-1] == pytest.approx(eager[-1], rel=1e-4)


def test_compile_is_not_part_of_a_study_s_identity() -> None:
    from search.config import parse_config
    from tests.conftest import tiny_config

    raw = tiny_config()
    plain = parse_config(raw)
    raw["train"]["compile"] = "reduce-overhead"
    assert parse_config(raw).fingerprint() == plain.fingerprint()
    raw["train"]["precision"] = "bf16"
    assert parse_config(raw).fingerprint() != plain.fingerprint()
    raw["train"]["precision"] = "auto"  # the default: as a study made before the key
    assert parse_config(raw).fingerprint() == plain.fingerprint()



@pytest.mark.gpu
def test_reduce_overhead_on_a_card_runs_a_trial_compiled(
        caplog: pytest.LogCaptureFixture) -> None:
    """A design's range test and two epochs on the card with CUDA graphs and ``auto``
    precision: nothing falls back, the losses are finite, the peak is the card's."""
    from tests.search.method.test_recipe import colour_data

    data = colour_data(torch.device("cuda"))
    base = design()
    config = replace(base, train=replace(base.train, compile="reduce-overhead"))
    with caplog.at_level(logging.WARNING, logger="cnnsearch.trial"):
        lrrt = run_lrrt(config, data)
        run = training_run(config, data, (1e-3, 1e-2))
        state = run.fit(data.val, epochs=2)
    assert not warnings_of(caplog)
    assert run.execution.forward.compiled and run.execution.forward.failure is None
    assert run.execution.precision.name in ("bf16", "fp16")
    assert all(math.isfinite(loss) for loss in lrrt.curve.losses)
    assert all(math.isfinite(r.train_loss) for r in state.history)
    assert lrrt.summary.memory_kind == "cuda_peak_allocated"
    assert lrrt.summary.peak_memory_bytes > 0
