"""The argument parser of every ``cnnsearch`` command, and the argument types it checks."""

from __future__ import annotations

import argparse

from search.service.storage import ARTIFACT_ENV, DEFAULT_ARTIFACT_DIR, DEFAULT_STORAGE, STORAGE_ENV


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got '{text}'")
    return int(text)


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", help=f"Optuna storage URL (default: ${STORAGE_ENV}, "
                        f"else {DEFAULT_STORAGE})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnsearch",
        description="Hyperparameter search for image-classification CNNs: LR range test, "
                    "early rejection, triangular2 training, on Optuna.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    search = commands.add_parser("search", help="run a search in this process")
    search.add_argument("--config", required=True, help="search space YAML")
    search.add_argument("--study", help="study name (default: the config's `study`)")
    search.add_argument("--n-trials", type=_positive_int,
                        help="trials to run (default: the config's n_trials, else 10)")
    search.add_argument("--timeout", type=_positive_float, help="stop after S seconds")
    search.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    search.add_argument("--seed", type=int, help="override the config's seed")
    search.add_argument("--artifact-dir", help=f"where LRRT curves are stored as Optuna "
                        f"artifacts (default: ${ARTIFACT_ENV}, else {DEFAULT_ARTIFACT_DIR}; "
                        "'' disables)")
    _add_storage(search)

    lrrt = commands.add_parser("lrrt", help="one LR range test of one design")
    lrrt.add_argument("--config", required=True)
    lrrt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="fix a space dimension, e.g. blocks=2 or lr_range=[1e-4,1e-2]")
    lrrt.add_argument("--out", default="lrrt-out", help="output folder (JSON + HTML)")
    lrrt.add_argument("--device", default="auto")

    export = commands.add_parser("export", help="the best completed trials, ready to retrain")
    export.add_argument("--study", required=True)
    export.add_argument("--top", type=_positive_int, default=3)
    export.add_argument("--format", choices=("yaml", "json"), default="yaml")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    _add_storage(export)

    train = commands.add_parser("train", help="extended training of an exported design")
    train.add_argument("--from", dest="source", required=True, help="a `cnnsearch export` file")
    train.add_argument("--rank", type=_positive_int, default=1)
    train.add_argument("--epochs", type=_positive_int, help="default: the search's epochs")
    train.add_argument("--repeats", type=_positive_int, default=1,
                       help="runs with seeds seed, seed+1, ...; the median is reported")
    train.add_argument("--out", default="runs", help="folder for weights and summary.json")
    train.add_argument("--device", default="auto")

    worker = commands.add_parser("worker", help="a long-running worker of a shared study")
    worker.add_argument("--study", required=True)
    worker.add_argument("--config", required=True)
    worker.add_argument("--max-trials", type=_positive_int,
                        help="stop when the study holds N finished trials (all workers)")
    worker.add_argument("--timeout", type=_positive_float, help="stop after S seconds")
    worker.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    worker.add_argument("--artifact-dir", help="as for search (a shared folder)")
    worker.add_argument("--checkpoint-dir", default="cnnsearch-checkpoints",
                        help="per-trial checkpoints for resuming retries ('' disables)")
    worker.add_argument("--heartbeat-interval", type=_positive_int, default=None,
                        help="seconds between heartbeats (default 10)")
    worker.add_argument("--grace-period", type=_positive_int, default=None,
                        help="heartbeat age that makes a trial stale (default 60)")
    _add_storage(worker)

    create = commands.add_parser("create-study", help="create a study (one-shot, idempotent)")
    create.add_argument("--study", required=True)
    create.add_argument("--config", required=True)
    create.add_argument("--artifact-dir")
    create.add_argument("--prepare-data", action="store_true",
                        help="load the config's dataset once first (downloading it when the "
                        "config says download: true), so workers sharing the data directory "
                        "find it there")
    _add_storage(create)

    reap = commands.add_parser("reap", help="fail and retry trials whose worker died")
    reap.add_argument("--study", required=True)
    reap.add_argument("--grace-period", type=_positive_int, default=None,
                      help="heartbeat age that makes a trial stale (default 60)")
    _add_storage(reap)

    trials = commands.add_parser("trials", help="the results table of a study")
    trials.add_argument("--study", required=True)
    _add_storage(trials)

    report = commands.add_parser("report", help="a self-contained HTML report of a study")
    report.add_argument("--study", required=True)
    report.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    _add_storage(report)

    dashboard = commands.add_parser("dashboard", help="optuna-dashboard with the LRRT plots "
                                    "(no authentication)")
    dashboard.add_argument("--artifact-dir", help="artifact folder (default: the one the "
                           f"studies were searched with, else ${ARTIFACT_ENV}, else "
                           f"{DEFAULT_ARTIFACT_DIR})")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    _add_storage(dashboard)
    return parser
