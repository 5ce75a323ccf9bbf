"""Mini-batch sampling strategies (METHOD.md §2, seed 004), vectorised on the device.

- ``uniform``: today's shuffled epochs, batch for batch (``DeviceBatches.epoch``).
- ``obs``: Online Batch Selection (Loshchilov & Hutter 2015). Samples are ranked by their
  latest loss, highest first, and rank ``r`` of ``N`` is drawn with probability
  ``∝ exp(-log(s) r / N)``: the top-ranked sample is ``s`` times likelier than the last
  (``s = 1``: uniform). As in the paper, the loss is not reweighted (OBS is biased towards
  hard samples on purpose).
- ``adaptive``: the thesis' Adaptive Sampling (seed 004, Algorithm 1, after Gopal 2016).
  Bins are the classes. A sample of class ``j`` is drawn with probability
  ``π_i = p_j q_i``; ``p_j ∝ sqrt(A_j)`` (eq. 67), ``A_j = Σ_{i∈j} Ĝ_i / q_i`` with ``Ĝ_i``
  the squared norm of the loss gradient w.r.t. the last layer's pre-activations (eq. 80,
  ``‖softmax(z_i) - onehot(y_i)‖²`` for cross-entropy, eq. 87: read off the logits of the
  forward pass, no extra backward); ``q_i ∝`` latest loss within its bin (eq. 79). ``P`` is
  recomputed every ``beta`` batches and smoothed, ``p ← δp p + (1 - δp) p_new``; ``Q`` after
  every batch, ``q ← δq q + (1 - δq) q_new``. The per-sample loss is multiplied by the
  importance weight ``1 / (N π_i)`` (eq. 62-65), so the expected weighted batch loss, and its
  gradient, equal those of the uniform mean over the training set.

Choices the thesis leaves open, made here:

- The first epoch is a uniform shuffled pass (the very batches ``uniform`` serves) that
  measures every sample's loss once; the thesis initialises unknown losses to ∞, i.e.
  unseen samples first, which a with-replacement draw cannot honour exactly.
- ``beta`` counts batches (optimizer steps); Algorithm 1 increments ``t`` per sample.
- ``A_j`` is accumulated over the last ``beta`` batches from each drawn sample's
  ``Ĝ_i / q_i`` times its importance weight: an unbiased estimate of eq. 67's sum whatever
  the draw probabilities (Algorithm 1 adds ``Ĝ_i`` per draw, which under its own sampling
  estimates ``p_j Σ Ĝ_i`` instead).
- OBS re-ranks every ``beta`` batches too (a sort of ``N`` losses), with the losses kept
  current after every batch.

``BATCH_SAMPLERS`` is the registry; ``make_batch_sampler`` builds one for a training set.
Strategies other than ``uniform`` need each sample's loss: ``search.method.step.train_step``
computes them (``reduction="none"``) only when given ``weights`` or ``on_losses``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from data import DeviceBatches

BURN_IN_EPOCHS = 1
"""Uniform shuffled epochs that measure every loss before a loss-based strategy samples."""

LOSS_FLOOR = 1e-7
"""Smallest loss kept (float32 cross-entropy's resolution), so no sample's probability is 0."""

_SAMPLING_STREAM = 0x626174  # keeps these draws apart from the shuffle's (seed, epoch)


# --------------------------------------------------------------------------- arithmetic


def obs_rank_probabilities(n: int, selection_pressure: float,
                           device: torch.device | str = "cpu") -> torch.Tensor:
    """Probability of each rank (0 = highest loss) of ``n``: ``∝ exp(-log(s) r / n)``."""
    ranks = torch.arange(n, device=device, dtype=torch.float64)
    weights = torch.exp(-math.log(selection_pressure) * ranks / n)
    return (weights / weights.sum()).to(torch.float32)


def gradient_bound(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per sample, ``‖softmax(z) - onehot(y)‖²``: the squared norm of the cross-entropy
    gradient w.r.t. the logits, which bounds the full gradient norm (thesis eq. 80, 87)."""
    residual = torch.softmax(logits.detach().float(), dim=1)
    residual[torch.arange(len(labels), device=labels.device), labels] -= 1.0
    return residual.square().sum(dim=1)


def bin_probabilities(accumulated: torch.Tensor) -> torch.Tensor:
    """``p_j ∝ sqrt(A_j)`` (thesis eq. 67); uniform when nothing was accumulated."""
    root = accumulated.clamp_min(0).sqrt()
    total = root.sum()
    return torch.where(total > 0, root / total, 1.0 / len(root))  # no host sync


def instance_probabilities(losses: torch.Tensor, bins: torch.Tensor,
                           num_bins: int) -> torch.Tensor:
    """``q_i = l_i / Σ_{k in i's bin} l_k`` (thesis eq. 79): each bin's ``q`` sums to 1."""
    totals = torch.zeros(num_bins, device=losses.device, dtype=losses.dtype)
    totals.index_add_(0, bins, losses)
    return losses / totals[bins]


def smooth(previous: torch.Tensor, current: torch.Tensor, delta: float) -> torch.Tensor:
    """``δ previous + (1 - δ) current`` (Algorithm 1, lines 14 and 22)."""
    return previous * delta + current * (1.0 - delta)


def importance_weights(drawn_probabilities: torch.Tensor, n: int) -> torch.Tensor:
    """``1 / (N π_i)``: with ``i ~ π``, ``E[w_i l_i] = mean(l)`` (thesis eq. 62)."""
    return 1.0 / (n * drawn_probabilities)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class BatchSamplingSettings:
    """Which strategy forms the mini-batches, and its parameters (unused ones ignored)."""

    strategy: str = "uniform"
    """``uniform``, ``obs`` or ``adaptive`` (``BATCH_SAMPLERS``)."""
    selection_pressure: float = 100.0
    """obs: ``s``, how much likelier the top-ranked sample is than the last (>= 1)."""
    beta: int = 10
    """Batches between recomputations: adaptive's bin probabilities, obs' loss ranking."""
    delta_p: float = 0.9
    """adaptive: smoothing of the bin probabilities P, in [0, 1)."""
    delta_q: float = 0.1
    """adaptive: smoothing of the instance probabilities Q, in [0, 1)."""

    def __post_init__(self) -> None:
        if self.strategy not in BATCH_SAMPLERS:
            raise ValueError(f"unknown batch sampling strategy {self.strategy!r}; one of "
                             f"{sorted(BATCH_SAMPLERS)}")
        pressure = self.selection_pressure
        if (isinstance(pressure, bool) or not isinstance(pressure, int | float)
                or not 1 <= pressure < math.inf):
            raise ValueError(f"selection_pressure must be a finite number >= 1, "
                             f"got {pressure!r}")
        if isinstance(self.beta, bool) or not isinstance(self.beta, int) or self.beta < 1:
            raise ValueError(f"beta must be a positive integer, got {self.beta!r}")
        for name in ("delta_p", "delta_q"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0 <= value < 1):
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")


# --------------------------------------------------------------------------- samplers


class Batch(NamedTuple):
    """One mini-batch: ``indices`` into the training set (None for plain shuffled batches),
    ``weights`` per sample for the loss (None: the plain mean)."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor | None = None
    weights: torch.Tensor | None = None


class UniformBatches:
    """Shuffled epochs, exactly ``DeviceBatches.epoch``; observes nothing."""

    observes = False
    """Whether ``observe`` needs each batch's per-sample losses and logits."""

    def __init__(self, train: DeviceBatches, settings: BatchSamplingSettings,
                 *, seed: int | None = None) -> None:
        self.train = train
        self.settings = settings
        self.seed = train.seed if seed is None else seed

    def epoch(self, epoch_index: int) -> Iterator[Batch]:
        """The batches of epoch ``epoch_index``; a sampler's state evolves as it observes,
        so iterate an epoch once, observing each batch before asking for the next."""
        for images, labels in self.train.epoch(epoch_index):
            yield Batch(images, labels)

    def observe(self, batch: Batch, losses: torch.Tensor, logits: torch.Tensor) -> None:
        """Record the per-sample ``losses`` and ``logits`` of ``batch`` (detached)."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to resume the sampler where it was (with ``epoch``
        reseeded from ``(seed, epoch)``)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


class _LossBased(UniformBatches):
    """Keeps every sample's latest loss; the first ``BURN_IN_EPOCHS`` are shuffled passes."""

    observes = True

    def __init__(self, train: DeviceBatches, settings: BatchSamplingSettings,
                 *, seed: int | None = None) -> None:
        super().__init__(train, settings, seed=seed)
        self.device = train.device
        self.bins = train.labels
        self.num_bins = int(self.bins.max()) + 1
        self.n = train.num_samples
        # the cross-entropy of a uniform guess, for samples a burn-in with drop_last skips
        self.losses = torch.full((self.n,), math.log(max(2, self.num_bins)),
                                 device=self.device)
        self.step = 0
        self.generator = torch.Generator(device=self.device)
        self.burning_in = True

    def _sizes(self) -> list[int]:
        size, n = self.train.batch_size, self.n
        return [min(size, n - start) for start in range(0, len(self.train) * size, size)]

    def epoch(self, epoch_index: int) -> Iterator[Batch]:
        if epoch_index < BURN_IN_EPOCHS:
            self.burning_in = True
            order = self.train.order(epoch_index)
            start = 0
            for size in self._sizes():
                index = order[start:start + size]
                start += size
                yield Batch(*self.train.take(index), index)
            return
        self.burning_in = False
        words = np.random.SeedSequence([self.seed, epoch_index, _SAMPLING_STREAM])
        state = words.generate_state(2, dtype=np.uint32)
        self.generator.manual_seed(int(state[0]) << 32 | int(state[1]))
        for size in self._sizes():
            index, weights = self._draw(size)
            yield Batch(*self.train.take(index), index, weights)

    def _draw(self, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def observe(self, batch: Batch, losses: torch.Tensor, logits: torch.Tensor) -> None:
        if batch.indices is None:
            raise ValueError("a loss-based sampler observes only the batches it served")
        self.losses[batch.indices] = losses.detach().float().clamp_min(LOSS_FLOOR)
        self.step += 1

    def state_dict(self) -> dict[str, Any]:
        return {"losses": self.losses.clone(), "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = state["losses"].to(self.device).clone()
        self.step = int(state["step"])


class OnlineBatchSelection(_LossBased):
    """Loshchilov & Hutter's OBS: ranks drawn with exponentially decaying probability."""

    def __init__(self, train: DeviceBatches, settings: BatchSamplingSettings,
                 *, seed: int | None = None) -> None:
        super().__init__(train, settings, seed=seed)
        self.rank_probabilities = obs_rank_probabilities(
            self.n, settings.selection_pressure, self.device)
        self.ranking: torch.Tensor | None = None
        self.ranked_at = -1

    def _draw(self, size: int) -> tuple[torch.Tensor, None]:
        if self.ranking is None or self.step - self.ranked_at >= self.settings.beta:
            self.ranking = torch.argsort(self.losses, descending=True)
            self.ranked_at = self.step
        ranks = torch.multinomial(self.rank_probabilities, size, replacement=True,
                                  generator=self.generator)
        return self.ranking[ranks], None

    def probabilities(self) -> torch.Tensor:
        """Each sample's draw probability under the current ranking."""
        ranking = self.ranking
        if ranking is None:
            ranking = torch.argsort(self.losses, descending=True)
        out = torch.empty_like(self.rank_probabilities)
        out[ranking] = self.rank_probabilities
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "ranking": self.ranking, "ranked_at": self.ranked_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        ranking = state["ranking"]
        self.ranking = None if ranking is None else ranking.to(self.device).clone()
        self.ranked_at = int(state["ranked_at"])


class AdaptiveSampling(_LossBased):
    """The thesis' Adaptive Sampling: a class by ``P``, then a sample of it by ``Q``."""

    def __init__(self, train: DeviceBatches, settings: BatchSamplingSettings,
                 *, seed: int | None = None) -> None:
        super().__init__(train, settings, seed=seed)
        counts = torch.bincount(self.bins, minlength=self.num_bins).float()
        present = (counts > 0).float()
        self.p = present / present.sum()  # uniform over the classes that have samples
        self.q = 1.0 / counts.clamp_min(1)[self.bins]  # uniform within each class
        self.accumulated = torch.zeros(self.num_bins, device=self.device)

    def probabilities(self) -> torch.Tensor:
        """``π_i = p_j q_i`` of every sample (sums to 1)."""
        pi = self.p[self.bins] * self.q
        return pi / pi.sum()

    def _draw(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pi = self.probabilities()
        index = torch.multinomial(pi, size, replacement=True, generator=self.generator)
        return index, importance_weights(pi[index], self.n)

    def observe(self, batch: Batch, losses: torch.Tensor, logits: torch.Tensor) -> None:
        super().observe(batch, losses, logits)
        index = batch.indices
        assert index is not None  # checked by super().observe
        bound = gradient_bound(logits, batch.labels) / self.q[index]
        if batch.weights is not None:
            bound = bound * batch.weights
        self.accumulated.index_add_(0, self.bins[index], bound)
        if self.step % self.settings.beta == 0:
            self.p = smooth(self.p, bin_probabilities(self.accumulated), self.settings.delta_p)
            self.accumulated.zero_()
        if not self.burning_in:
            fresh = instance_probabilities(self.losses, self.bins, self.num_bins)
            self.q = smooth(self.q, fresh, self.settings.delta_q)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "p": self.p.clone(), "q": self.q.clone(),
                "accumulated": self.accumulated.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.p = state["p"].to(self.device).clone()
        self.q = state["q"].to(self.device).clone()
        self.accumulated = state["accumulated"].to(self.device).clone()


BatchSampler = UniformBatches
"""The interface every strategy implements (``uniform`` is the base class)."""

BATCH_SAMPLERS: dict[str, type[UniformBatches]] = {
    "uniform": UniformBatches,
    "obs": OnlineBatchSelection,
    "adaptive": AdaptiveSampling,
}


def make_batch_sampler(settings: BatchSamplingSettings, train: DeviceBatches,
                       *, seed: int | None = None) -> UniformBatches:
    """The strategy of ``settings`` over ``train``; draws are seeded from ``seed`` (default:
    the batches' own shuffle seed) and the epoch, like the shuffle."""
    return BATCH_SAMPLERS[settings.strategy](train, settings, seed=seed)
