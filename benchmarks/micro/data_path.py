"""Training throughput of device-resident batches against a DataLoader over the same tensors.

    python -m benchmarks.micro.data_path [--device cpu] [--train-size 10000] [--epochs 2]

Both paths feed the same model (B2FL16Adam on Fashion-MNIST), the same normalised tensors,
the same batch size; only the batching differs. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable, Iterable

import torch
from torch.nn import functional
from torch.utils.data import DataLoader, TensorDataset

from data import DeviceBatches, load_dataset, normalise
from models import Architecture, build_cnn
from search.method.optimizers import make_optimizer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(batches: Callable[[int], Iterable], count: int, epochs: int,
                      device: torch.device, model: torch.nn.Module | None) -> float:
    """Wall-clock images/s over ``epochs`` passes; with ``model`` None only the data path."""
    optimizer = make_optimizer(model, "adam", 1e-3) if model is not None else None
    _sync(device)
    started = time.perf_counter()
    for epoch in range(epochs):
        for images, labels in batches(epoch):
            images, labels = images.to(device, non_blocking=True), labels.to(device)
            if model is not None:
                loss = functional.cross_entropy(model(images), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    _sync(device)
    return count * epochs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3,
                        help="paths are measured in turn this many times; medians reported")
    args = parser.parse_args()
    device = torch.device(args.device)
    dataset = load_dataset("fashion-mnist", train_size=args.train_size, val_size=100)
    images, labels = dataset.train_images, dataset.train_labels
    count = len(labels)

    device_batches = DeviceBatches(images, labels, batch_size=args.batch_size, device=device,
                                   shuffle=True, seed=0)
    tensors = TensorDataset(normalise(images), labels)
    loaders = {
        "DataLoader, 0 workers": DataLoader(tensors, batch_size=args.batch_size, shuffle=True,
                                            pin_memory=device.type == "cuda"),
        "DataLoader, 2 workers": DataLoader(tensors, batch_size=args.batch_size, shuffle=True,
                                            num_workers=2, persistent_workers=True,
                                            pin_memory=device.type == "cuda"),
    }
    paths: dict[str, Callable[[int], Iterable]] = {"device-resident (cnnsearch)":
                                                  device_batches.epoch}
    for name, loader in loaders.items():
        paths[name] = lambda _epoch, loader=loader: loader

    architecture = Architecture(blocks=2, filters=16, l2=0.0005)
    print(f"# data path benchmark: B2FL16Adam, Fashion-MNIST {count} images, batch "
          f"{args.batch_size}, {args.epochs} epochs, device {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    models = {name: build_cnn(architecture, dataset.input_shape, 10, seed=0).to(device)
              for name in paths}
    for name, batches in paths.items():  # warm-up: permutations, workers, allocator
        images_per_second(batches, count, 1, device, models[name])
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits every path
        for name, batches in paths.items():
            train = images_per_second(batches, count, args.epochs, device, models[name])
            data_only = images_per_second(batches, count, args.epochs, device, None)
            results[name].append((train, data_only))
    print(f"\nmedian of {args.rounds} interleaved rounds\n")
    print("| data path | training images/s | data-only images/s |")
    print("|---|---:|---:|")
    for name, values in results.items():
        train = statistics.median(v[0] for v in values)
        data_only = statistics.median(v[1] for v in values)
        print(f"| {name} | {train:,.0f} | {data_only:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
