"""The model's forward as a trial's steps call it: compiled with ``torch.compile`` once per
trial (``train.compile``), or the model itself.

What is compiled is the network's forward; AOTAutograd compiles its backward with it, so
the training step's forward and backward and the evaluation step's forward run compiled,
while the loss, the optimizer and the scheduler stay eager (an LR that changes every batch
would recompile a compiled optimizer step). ``reduce-overhead`` adds CUDA graphs, which is
what launch-bound small CNNs need on a GPU; ``default`` only fuses kernels.

Compilation is lazy: it happens at the first call, again at a new batch shape (the last,
smaller batch of an epoch) and in eval mode. Any failure there (no C compiler, an
unsupported operator, a backend bug) switches the trial to the eager model for good, with
one warning: a trial is never failed for a compiler's sake. Running out of memory is not a
compile failure and propagates as it would eager.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

LOGGER = logging.getLogger("cnnsearch.trial")

COMPILE_MODES = ("off", "default", "reduce-overhead")
"""``train.compile``'s values: eager, ``torch.compile``'s default mode, or its CUDA-graph
mode."""

Backend = str | Callable[..., Any]

COMPILE_BACKEND: Backend = "inductor"
"""The backend ``torch.compile`` is given (a name or a callable backend, as torch takes)."""


def root_cause(error: BaseException) -> BaseException:
    """The error under the wrappers (``BackendCompilerFailed`` holds the backend's own)."""
    seen = {id(error)}
    while True:
        inner = getattr(error, "inner_exception", None) or error.__cause__
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


class StepForward:
    """Call it as the model: the compiled forward until compilation fails, the model's own
    forward from then on. ``failure`` says why it fell back (None while it has not)."""

    def __init__(self, model: nn.Module, mode: str = "off", *,
                 backend: Backend | None = None) -> None:
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {', '.join(COMPILE_MODES)}, "
                             f"got {mode!r}")
        self.model = model
        self.mode = mode
        self.failure: str | None = None
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
        if mode == "off":
            return
        backend = COMPILE_BACKEND if backend is None else backend
        options: dict[str, Any] = {"backend": backend}
        if mode != "default" and backend == "inductor":  # modes are inductor's
            options["mode"] = mode
        try:
            self._compiled = torch.compile(model, **options)
        except Exception as error:  # e.g. a Python torch.compile does not support
            self.fall_back(error)

    @property
    def compiled(self) -> bool:
        """Whether calls still go through the compiled forward."""
        return self._compiled is not None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self._compiled is None:
            return self.model(images)
        try:
            return self._compiled(images)
        except torch.OutOfMemoryError:
            raise
        except Exception as error:
            if not self.fall_back(error):
                raise
            return self.model(images)

    def fall_back(self, error: BaseException) -> bool:
        """Switch to the eager model after ``error`` (one warning); False when already
        eager, so the caller re-raises: the error was not the compiler's. Out of memory
        under a compiler's wrapper is raised as itself: it fails the trial as ``oom``."""
        cause = root_cause(error)
        if isinstance(cause, torch.OutOfMemoryError):
            raise cause
        if self._compiled is None:
            return False
        self._compiled = None
        self.failure = _first_line(cause)
        LOGGER.warning("cnnsearch: torch.compile (%s) failed, the trial goes on eager: %s",
                       self.mode, self.failure)
        return True
