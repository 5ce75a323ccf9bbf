"""The argument parser of every ``cnnsearch`` command, and the argument types it checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.record.study import ARTIFACT_ENV, DEFAULT_ARTIFACT_DIR
from search.service.storage import DEFAULT_STORAGE, STORAGE_ENV


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


def _trials_per_gpu(text: str) -> int | str:
    """``auto`` or a positive integer (``search.service.packing``)."""
    from search.service.packing import parse_trials_per_gpu

    try:
        value = parse_trials_per_gpu(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return "auto" if value is None else value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got '{text}'")
    return int(text)


def package_version() -> str:
    """The installed distribution's version, else the one in the source tree's pyproject."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cnnsearch")
    except PackageNotFoundError:
        import tomllib

        try:
            pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help unless it has no default (None, False, an
    empty list), takes no value (a switch) or its help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.nargs == 0 or action.default in (None, False, []):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub)command parser shows the defaults in its help."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    """-q/-v, before the command (``cnnsearch -q search ...``) or after it."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const="quiet",
                       default=default, help="only errors and the results (no progress "
                       "lines, no warnings)")
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const",
                       const="verbose", default=default,
                       help="also Optuna's INFO log lines, above the status line")


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", help=f"Optuna storage URL (default: ${STORAGE_ENV}, "
                        f"else {DEFAULT_STORAGE})")


def _add_placement(parser: argparse.ArgumentParser) -> None:
    """Where a searching process computes (``search.service.devices``)."""
    parser.add_argument("--device", default="auto",
                        help="auto (a GPU of its own if any, else cpu), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=_positive_int,
                        help="torch CPU threads (default: the cores shared among the "
                        "cnnsearch processes on this machine; 1 on a GPU)")
    parser.add_argument("--trials-per-gpu", type=_trials_per_gpu, metavar="N|auto",
                        help="run trials side by side on each GPU (--device auto: every "
                        "visible card; cuda:N: that one), each in a worker process: N per "
                        "card, or auto: as many as their measured peak memory lets fit "
                        "(default: one trial at a time in this process)")
    parser.add_argument("--max-trials-per-gpu", type=_positive_int, default=8, metavar="N",
                        help="the most trials auto packs on one card")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key that is not a space dimension, e.g. "
                        "train.precision=bf16 or train.compile=reduce-overhead")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnsearch",
        description="Hyperparameter search for image-classification CNNs: LR range test, "
                    "early rejection, triangular2 training, on Optuna.",
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {package_version()}")
    _add_verbosity(parser, "normal")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    search = commands.add_parser("search", help="run a search in this process")
    search.add_argument("--config", required=True, help="search space YAML")
    search.add_argument("--study", help="study name (default: the config's `study`)")
    search.add_argument("--n-trials", type=_positive_int,
                        help="trials to run (default: the config's n_trials, else 10)")
    search.add_argument("--timeout", type=_positive_float,
                        help="stop after S seconds (default: no limit)")
    _add_placement(search)
    search.add_argument("--seed", type=int,
                        help="override the config's seed (default: the config's seed)")
    search.add_argument("--artifact-dir", help=f"where LRRT curves are stored as Optuna "
                        f"artifacts (default: ${ARTIFACT_ENV}, else {DEFAULT_ARTIFACT_DIR}; "
                        "'' disables)")
    search.add_argument("--checkpoint-dir", default="cnnsearch-checkpoints",
                        help="per-trial checkpoints, so a search stopped by Ctrl-C resumes "
                        "its trial next time ('' disables)")
    _add_storage(search)

    lrrt = commands.add_parser("lrrt", help="one LR range test of one design")
    lrrt.add_argument("--config", required=True, help="search space YAML; each dimension not "
                      "fixed by --set takes its first choice")
    lrrt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="fix a space dimension, e.g. blocks=2 or lr_range=[1e-4,1e-2], "
                      "or set another key, e.g. train.precision=bf16")
    lrrt.add_argument("--out", default="lrrt-out", help="output folder (JSON + HTML)")
    lrrt.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")

    export = commands.add_parser("export", help="the best completed trials, ready to retrain")
    export.add_argument("--study", required=True, help="study name")
    export.add_argument("--top", type=_positive_int, default=3,
                        help="how many of the best completed trials")
    export.add_argument("--pareto", action="store_true",
                        help="instead of --top: the Pareto front of a multi-objective study, "
                        "each design once, best validation accuracy first")
    export.add_argument("--format", choices=("yaml", "json"), default="yaml",
                        help="file format")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    _add_storage(export)

    train = commands.add_parser("train", help="extended training of an exported design")
    train.add_argument("--from", dest="source", required=True, help="a `cnnsearch export` file")
    train.add_argument("--rank", type=_positive_int, default=1,
                       help="which design of the export, 1 = the best")
    train.add_argument("--epochs", type=_positive_int,
                       help="training epochs (default: the search's train.epochs)")
    train.add_argument("--repeats", type=_positive_int, default=1,
                       help="runs with seeds seed, seed+1, ...; the median is reported")
    train.add_argument("--out", default="runs", help="folder for weights and summary.json")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")

    worker = commands.add_parser("worker", help="a long-running worker of a shared study")
    worker.add_argument("--study", required=True, help="study name (shared by the workers)")
    worker.add_argument("--config", required=True, help="search space YAML")
    worker.add_argument("--max-trials", type=_positive_int,
                        help="stop when the study holds N finished trials (all workers; "
                        "default: no limit)")
    worker.add_argument("--timeout", type=_positive_float,
                        help="stop after S seconds (default: no limit)")
    _add_placement(worker)
    worker.add_argument("--artifact-dir", help="as for search (a shared folder)")
    worker.add_argument("--checkpoint-dir", default="cnnsearch-checkpoints",
                        help="per-trial checkpoints for resuming retries ('' disables)")
    worker.add_argument("--heartbeat-interval", type=_positive_int, default=None,
                        help="seconds between heartbeats (default 10)")
    worker.add_argument("--grace-period", type=_positive_int, default=None,
                        help="heartbeat age that makes a trial stale (default 60)")
    _add_storage(worker)

    create = commands.add_parser("create-study", help="create a study (one-shot, idempotent)")
    create.add_argument("--study", required=True, help="study name")
    create.add_argument("--config", required=True, help="search space YAML")
    create.add_argument("--artifact-dir", help="artifact folder the study records for "
                        f"the dashboard (default: ${ARTIFACT_ENV}, else {DEFAULT_ARTIFACT_DIR})")
    create.add_argument("--prepare-data", action="store_true",
                        help="load the config's dataset once first (downloading it when the "
                        "config says download: true), so workers sharing the data directory "
                        "find it there")
    _add_storage(create)

    reap = commands.add_parser("reap", help="fail and retry trials whose worker died")
    reap.add_argument("--study", required=True, help="study name")
    reap.add_argument("--grace-period", type=_positive_int, default=None,
                      help="heartbeat age that makes a trial stale (default 60)")
    _add_storage(reap)

    trials = commands.add_parser("trials", help="the results table of a study")
    trials.add_argument("--study", required=True, help="study name")
    trials.add_argument("--format", choices=("table", "json"), default="table",
                        help="a table for people, or a JSON list of rows (same fields)")
    _add_storage(trials)

    report = commands.add_parser("report", help="a self-contained HTML report of a study")
    report.add_argument("--study", required=True, help="study name")
    report.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    report.add_argument("--artifact-dir", help="artifact folder (default: the one the study "
                        f"was searched with, else ${ARTIFACT_ENV}, else {DEFAULT_ARTIFACT_DIR})")
    _add_storage(report)

    dashboard = commands.add_parser("dashboard", help="optuna-dashboard with the LRRT plots "
                                    "(no authentication)")
    dashboard.add_argument("--artifact-dir", help="artifact folder (default: the one the "
                           f"studies were searched with, else ${ARTIFACT_ENV}, else "
                           f"{DEFAULT_ARTIFACT_DIR})")
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to listen on; the dashboard has no authentication, "
                           "keep it on the loopback")
    dashboard.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    _add_storage(dashboard)
    for command in commands.choices.values():
        _add_verbosity(command, argparse.SUPPRESS)
    return parser
