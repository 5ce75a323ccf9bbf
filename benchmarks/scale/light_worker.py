"""One lightweight worker process: ``cnnsearch worker`` without the CNN.

It opens the storage as a worker does (``open_loop_storage``: the proxy client, retries,
heartbeats, one retry of a dead worker's trial), takes the same slot lock and runs the
same trial loop (``run_trial_loop``: budget, reaper, outages); only the objective differs:
it samples one float and waits. Nothing here imports torch, so hundreds of these fit in a
few GiB; each writes one JSON line per trial it finished (and a last line on exit) for
``benchmarks.scale.run`` to check against the database.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, TextIO

import optuna

from search.service.resilient_storage import RetryingStorage
from search.service.stop_flag import StopFlag
from search.service.trial_loop import LoopLimits, open_loop_storage, run_trial_loop
from search.service.trial_slots import TrialSlotLock


@dataclass(frozen=True)
class LightSettings:
    url: str
    study: str
    max_trials: int
    think_seconds: float
    heartbeat_interval: int
    grace_period: int
    log_path: str


class WaitingObjective:
    """Samples ``x``, records the worker's pid, and waits about ``think_seconds`` (0.5x to
    1.5x, so workers started together do not stay in step); remembers when it ran, for the
    ask+tell timing."""

    def __init__(self, think_seconds: float, stop: StopFlag) -> None:
        self.think_seconds, self.stop = think_seconds, stop
        self.interrupted_trials: list[int] = []
        self.paused_trials: list[int] = []
        self.entered = self.left = 0.0

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("worker", os.getpid())  # as cnnsearch's objective records it
        self.entered = time.perf_counter()
        self.stop.wait(self.think_seconds * random.uniform(0.5, 1.5))
        self.left = time.perf_counter()
        return x

    def abandon(self, _study: optuna.Study, number: int | None) -> str:
        """Nothing to clean up: it keeps no checkpoint."""
        return f"trial {number} was finished by another process; abandoned"


class TrialLog:
    """The study callback that writes one line per trial after it was told: its id, number,
    state and how long the ask and the tell took."""

    def __init__(self, out: TextIO, objective: WaitingObjective) -> None:
        self.out, self.objective = out, objective
        self.ask_seconds = 0.0

    def timed_ask(self, ask: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return ask(*args, **kwargs)
            finally:
                self.ask_seconds = time.perf_counter() - started

        return wrapped

    def __call__(self, _study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        tell_seconds = time.perf_counter() - self.objective.left
        self.out.write(json.dumps({"id": trial._trial_id, "number": trial.number,
                                   "state": trial.state.name, "ask": self.ask_seconds,
                                   "tell": tell_seconds}) + "\n")
        self.out.flush()


def main(settings: LightSettings) -> None:
    """The process's body (started by ``benchmarks.scale.run`` from a fork server that
    imported this module once, so the workers share its pages)."""
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    random.seed(os.getpid())
    stop = StopFlag().install()
    storage = open_loop_storage(settings.url, settings.heartbeat_interval,
                                settings.grace_period)
    if isinstance(storage, RetryingStorage):
        storage.stop = stop
    study = optuna.load_study(study_name=settings.study, storage=storage,
                              sampler=optuna.samplers.RandomSampler(seed=os.getpid()))
    objective = WaitingObjective(settings.think_seconds, stop)
    with open(settings.log_path, "a") as out:
        log = TrialLog(out, objective)
        study.ask = log.timed_ask(study.ask)  # type: ignore[method-assign]
        limits = LoopLimits(max_trials=settings.max_trials,
                            heartbeat_interval=settings.heartbeat_interval, poll_seconds=1.0)
        ran = run_trial_loop(study, storage, TrialSlotLock(settings.url, settings.study),
                             objective, limits, stop, callbacks=[log])
        out.write(json.dumps({"done": ran, "torch_imported": "torch" in sys.modules}) + "\n")
