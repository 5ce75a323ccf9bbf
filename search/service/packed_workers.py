"""``--trials-per-gpu N | auto``: several trials on each card, each in a worker process of
its own, started and watched by this process.

Every worker process holds one slot of its card (``search.service.devices``) and runs
trials one after another, as ``cnnsearch worker`` does (the study's ``--max-trials``
budget, heartbeats, checkpoints and retries included). This process keeps as many workers
on each card as its packing asks for (``search.service.packing``): N, or under ``auto``
one until a range test has measured a peak, then as many as fit. It starts at most one
worker per card each poll, restarts a worker that crashed (at most ``MAX_RESTARTS`` in all),
does not replace one that left its card after an out-of-memory error, and stops starting
any once a worker finished because the study's work is done. SIGTERM and Ctrl-C reach
every worker, which ends its trial cleanly (checkpoint, retry queued) before this process
returns.

The workers are ``spawn``-ed: CUDA cannot be used in a forked child.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TextIO

import torch

from search.config import SearchConfig
from search.errors import UserError
from search.service.devices import (
    MAX_SLOTS,
    Card,
    DeviceInventory,
    held_slots,
    take_slot_within,
    use_fast_kernels,
)
from search.service.packing import CardPacking, PackingPolicy
from search.service.stop_flag import StopFlag
from search.service.worker import WorkerOptions, run_worker
from search.views.progress import Output

EXIT_DONE = 0
"""A worker found nothing left to do: the budget is spent, the time is up, or every design
was tried."""
EXIT_USER_ERROR = 2
"""A bad config or dataset: every other worker would fail alike."""
EXIT_LEFT_CARD = 75
"""A worker whose slot an out-of-memory error put above its card's ceiling."""
MAX_RESTARTS = 5
"""Crashed workers restarted in one run, over all cards."""


@dataclass(frozen=True)
class PackedRun:
    """What every worker process of a packed run is given (it is pickled to them)."""

    config: SearchConfig
    url: str
    options: WorkerOptions
    policy: PackingPolicy
    folder: Path
    """The placement folder: slot locks and the cards' packing records."""
    verbosity: str = "normal"
    """The command's ``-q``/``-v``: each worker prints as the command would."""
    threads: int = 1
    """CPU threads per worker: on a GPU one thread feeds the card."""


@dataclass
class PackedOutcome:
    """How the packed run went: the processes it started and how they ended."""

    started: int = 0
    exit_codes: list[int] = field(default_factory=list)
    restarts: int = 0
    user_error: bool = False


WorkerMain = Callable[[PackedRun, Card, "float | None"], None]
"""What a worker process runs: ``run_packed_worker`` inside the command's own output set-up
(the CLI's ``packed_worker_main``); a module-level function, since it is spawned."""


def run_packed_workers(run: PackedRun, inventory: DeviceInventory, *, stop: StopFlag,
                       out: TextIO = sys.stdout, output: Output | None = None,
                       worker_main: WorkerMain | None = None,
                       poll_seconds: float = 1.0) -> PackedOutcome:
    """Keep the workers of each card of ``inventory`` at its packing until the study's work
    is done, the timeout passes or ``stop`` is set; returns when every worker has ended.
    Each worker process runs ``worker_main`` (default: ``run_packed_worker`` with a plain
    ``Output``)."""
    cards = inventory.cards()
    if not cards:
        raise UserError("--trials-per-gpu: no GPU is visible to pack trials on")
    context = multiprocessing.get_context("spawn")
    for card in cards:  # a card nobody uses starts afresh: no ceiling from an old run
        if held_slots(run.folder, card.uuid) == 0:
            CardPacking(run.folder, card.uuid).reset()
    deadline = (time.monotonic() + run.options.timeout if run.options.timeout else None)
    workers: dict[str, list[BaseProcess]] = {card.uuid: [] for card in cards}
    outcome = PackedOutcome()
    finished = forwarded = False
    main = worker_main or _worker_process
    if output is None or not output.quiet:
        print(f"packing {run.policy.describe()} on {len(cards)} card(s): "
              + ", ".join(f"{c.name or c.uuid} ({c.torch_device})" for c in cards),
              file=out, flush=True)
    while True:
        for card in cards:
            for process in [p for p in workers[card.uuid] if not p.is_alive()]:
                process.join()
                workers[card.uuid].remove(process)
                finished |= _ended(process.exitcode, outcome, out)
        if deadline is not None and time.monotonic() >= deadline:
            finished = True
        if stop.is_set() and not forwarded:
            forwarded = True
            for process in (p for group in workers.values() for p in group):
                process.terminate()  # SIGTERM: the worker ends its trial cleanly
        if not finished and not stop.is_set():
            for card in cards:
                target = CardPacking(run.folder, card.uuid).target(run.policy,
                                                                   card.total_bytes)
                if len(workers[card.uuid]) < min(target, MAX_SLOTS):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    process = context.Process(target=main, args=(run, card, remaining),
                                              daemon=False)
                    process.start()
                    workers[card.uuid].append(process)
                    outcome.started += 1
        if (finished or stop.is_set()) and not any(workers.values()):
            return outcome
        stop.wait(poll_seconds)


def _ended(code: int | None, outcome: PackedOutcome, out: TextIO) -> bool:
    """Book a worker's exit; True when no more workers should be started."""
    code = -1 if code is None else code
    outcome.exit_codes.append(code)
    if code in (EXIT_DONE, EXIT_LEFT_CARD):
        return code == EXIT_DONE
    if code == EXIT_USER_ERROR:
        outcome.user_error = True
        return True
    outcome.restarts += 1
    if outcome.restarts > MAX_RESTARTS:
        print(f"cnnsearch: {outcome.restarts} workers crashed (last exit code {code}); "
              "no more are started", file=out, flush=True)
        return True
    print(f"cnnsearch: a worker crashed (exit code {code}); another takes its slot",
          file=out, flush=True)
    return False


def _worker_process(run: PackedRun, card: Card, timeout: float | None) -> None:
    """The default worker process: ``run_packed_worker`` printing as ``run.verbosity``
    says, with the logging the process starts with."""
    run_packed_worker(run, card, timeout, Output(run.verbosity))


def run_packed_worker(run: PackedRun, card: Card, timeout: float | None,
                      output: Output) -> None:
    """One worker process: a slot of ``card``, then trials until there is nothing to do;
    exits with ``EXIT_DONE``, ``EXIT_LEFT_CARD`` or ``EXIT_USER_ERROR``."""
    stop = StopFlag().install()
    device = card.torch_device
    use_fast_kernels(device)
    torch.set_num_threads(run.threads)
    placement = take_slot_within(run.folder, card.uuid, MAX_SLOTS)
    if placement is None:
        sys.exit(EXIT_LEFT_CARD)
    options = replace(run.options, timeout=timeout)
    try:
        run_worker(run.config, run.url, options, device, stop=stop, output=output,
                   placement=placement)
    except UserError as error:
        print(f"cnnsearch: error: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
    sys.exit(EXIT_LEFT_CARD if placement.over_ceiling() and not stop.is_set() else EXIT_DONE)
