"""The argument parser of every ``cnnsearch`` command, and the argument types it checks."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from search.config.checkers import (
    DESIGN_COUNT,
    EPOCHS,
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    OPTIONAL_PATH,
    PATH,
    PORT,
    PROXY_THREADS,
    REPEATS,
    SEED,
    STUDY_NAME,
    TIMEOUT,
    TOP_CLASSES,
    TRIAL_COUNT,
    TRIALS_PER_GPU,
    Checker,
    ValueRefused,
    threads,
)
from search.config.documents import short_repr
from search.record.study import ARTIFACT_ENV, DEFAULT_ARTIFACT_DIR
from search.service.storage import DEFAULT_STORAGE, STORAGE_ENV

PORTABLE_FORMATS = ("onnx", "torchscript", "torch-export")
"""``search.trained.portable.FORMATS``, repeated so that parsing imports no torch."""
PREDICT_FORMATS = ("table", "json", "csv")
PREDICT_RUNTIMES = ("torch", "onnx")


def _flag(check: Checker, parse: Callable[[str], object] = str
          ) -> Callable[[str], object]:
    """An argparse type: the text parsed (``int``, ``float`` or kept as text), then checked
    by ``check``, the checker the same value meets in a config, so a flag takes exactly what
    its config key takes."""
    kind = {int: "an integer", float: "a number"}.get(parse, "a value")

    def convert(text: str) -> object:
        try:
            value = parse(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {kind}, got {short_repr(text)}"
                                             ) from None
        try:
            return check("", value)
        except ValueRefused as refused:
            raise argparse.ArgumentTypeError(f"expected {refused.expected}, got "
                                             f"{short_repr(refused.value)}") from None

    convert.__name__ = getattr(check, "__name__", "value")  # argparse's "invalid X value"
    convert.check = check  # type: ignore[attr-defined]  # its bounds, for the tests
    return convert


_study = _flag(STUDY_NAME)
_seed = _flag(SEED, int)
_trial_count = _flag(TRIAL_COUNT, int)
_epochs = _flag(EPOCHS, int)
_timeout = _flag(TIMEOUT, float)
_threads = _flag(threads, int)
_designs = _flag(DESIGN_COUNT, int)
_repeats = _flag(REPEATS, int)
_heartbeat = _flag(HEARTBEAT_SECONDS, int)
_grace = _flag(GRACE_SECONDS, int)
_port = _flag(PORT, int)
_path = _flag(PATH)
_optional_path = _flag(OPTIONAL_PATH)
_top = _flag(TOP_CLASSES, int)
_proxy_threads = _flag(PROXY_THREADS, int)
_per_gpu = _flag(TRIALS_PER_GPU, int)


_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?", re.IGNORECASE)


def _host_name(text: str) -> str:
    """A DNS name (letters, digits, hyphens, dots; at most 253 characters)."""
    if len(text) > 253 or not _HOST_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected a host name such as dashboard.example.org, got {ascii(text)[:80]}")
    return text


def _trials_per_gpu(text: str) -> int | str:
    """``auto`` (``search.service.packing`` sizes it) or a count ``--max-trials-per-gpu``
    would take."""
    if text.strip().lower() == "auto":
        return "auto"
    return _per_gpu(text)


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
    """Every (sub)command parser shows the defaults in its help, and reports a bad argument
    as every other error is reported: one line, exit code 2 (no usage block)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        from search.errors import one_line

        command = self.prog.partition(" ")[2]  # "search" of "cnnsearch search"
        self.exit(2, f"cnnsearch: error: {one_line(f'{command}: ' * bool(command) + message)}"
                     f" (see {self.prog} --help)\n")


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
    parser.add_argument("--threads", type=_threads,
                        help="torch CPU threads (default: the cores shared among the "
                        "cnnsearch processes on this machine; 1 on a GPU)")


def _add_packing(parser: argparse.ArgumentParser) -> None:
    """Trials side by side on a card, and the non-space keys a search may override."""
    parser.add_argument("--trials-per-gpu", type=_trials_per_gpu, metavar="N|auto",
                        help="run trials side by side on each GPU (--device auto: every "
                        "visible card; cuda:N: that one), each in a worker process: N per "
                        "card, or auto: as many as their measured peak memory lets fit "
                        "(default: one trial at a time in this process)")
    parser.add_argument("--max-trials-per-gpu", type=_per_gpu, default=8, metavar="N",
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
    search.add_argument("--config", required=True, type=_path, help="search space YAML")
    search.add_argument("--study", type=_study,
                        help="study name (default: the config's `study`)")
    search.add_argument("--n-trials", type=_trial_count,
                        help="trials to run (default: the config's n_trials, else 10)")
    search.add_argument("--timeout", type=_timeout,
                        help="stop after S seconds (default: no limit)")
    _add_placement(search)
    _add_packing(search)
    search.add_argument("--seed", type=_seed,
                        help="override the config's seed (default: the config's seed)")
    search.add_argument("--artifact-dir", type=_optional_path,
                        help=f"where LRRT curves are stored as Optuna artifacts (default: "
                        f"${ARTIFACT_ENV}, else {DEFAULT_ARTIFACT_DIR}; '' disables)")
    search.add_argument("--checkpoint-dir", default="cnnsearch-checkpoints",
                        type=_optional_path,
                        help="per-trial checkpoints, so a search stopped by Ctrl-C resumes "
                        "its trial next time ('' disables)")
    _add_storage(search)

    lrrt = commands.add_parser("lrrt", help="one LR range test of one design")
    lrrt.add_argument("--config", required=True, type=_path,
                      help="search space YAML; each dimension not fixed by --set takes its "
                      "first choice")
    lrrt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="fix a space dimension, e.g. blocks=2 or lr_range=[1e-4,1e-2], "
                      "or set another key, e.g. train.precision=bf16")
    lrrt.add_argument("--out", default="lrrt-out", type=_path,
                      help="output folder (JSON + HTML)")
    _add_placement(lrrt)

    export = commands.add_parser("export", help="the best completed trials, ready to retrain")
    export.add_argument("--study", required=True, type=_study, help="study name")
    export.add_argument("--top", type=_designs, default=3,
                        help="how many of the best completed trials")
    export.add_argument("--pareto", action="store_true",
                        help="instead of --top: the Pareto front of a multi-objective study, "
                        "each design once, best validation accuracy first")
    export.add_argument("--format", choices=("yaml", "json"), default="yaml",
                        help="file format")
    export.add_argument("-o", "--output", type=_path, help="file to write (default: stdout)")
    _add_storage(export)

    train = commands.add_parser("train", help="extended training of an exported design")
    train.add_argument("--from", dest="source", required=True, type=_path,
                       help="a `cnnsearch export` file")
    train.add_argument("--rank", type=_designs, default=1,
                       help="which design of the export, 1 = the best")
    train.add_argument("--epochs", type=_epochs,
                       help="training epochs (default: the search's train.epochs)")
    train.add_argument("--repeats", type=_repeats, default=1,
                       help="runs with seeds seed, seed+1, ...; the median is reported")
    train.add_argument("--out", default="runs", type=_path, help="the model folder: weights "
                       "(safetensors), model.json, summary.json, the model card, the "
                       "portable file")
    _add_placement(train)
    train.add_argument("--portable", choices=(*PORTABLE_FORMATS, "none"), default="onnx",
                       help="portable file of the model run, checked against torch ('none': "
                       "skip; `cnnsearch package` makes one later)")

    predict = commands.add_parser("predict", help="a trained model on new images")
    predict.add_argument("--model", required=True, type=_path,
                         help="a `cnnsearch train --out` folder")
    predict.add_argument("images", nargs="*", metavar="IMAGE", type=_path, help="image files")
    predict.add_argument("--folder", type=_path, help="instead of IMAGEs: every image under "
                         "this folder; sub-folders named after the classes make it labelled "
                         "(accuracy)")
    predict.add_argument("--top", type=_top, default=1,
                         help="classes shown per image, most probable first")
    predict.add_argument("--format", choices=PREDICT_FORMATS, default="table",
                         help="a table for people, JSON or CSV for scripts")
    predict.add_argument("--seed", type=_seed, help="the run of `train --repeats` to use "
                         "(default: the median run by final validation accuracy)")
    predict.add_argument("--runtime", choices=PREDICT_RUNTIMES, default="torch",
                         help="torch (the safetensors weights) or onnx (the ONNX file, with "
                         "onnxruntime, on the CPU)")
    _add_placement(predict)

    package = commands.add_parser("package", help="(re)make a trained model's portable file")
    package.add_argument("--model", required=True, type=_path,
                         help="a `cnnsearch train --out` folder")
    package.add_argument("--format", choices=PORTABLE_FORMATS, default="onnx",
                         help="onnx (onnxruntime, no torch), torchscript or torch-export "
                         "(.pt2; both need torch)")
    package.add_argument("--seed", type=_seed,
                         help="the run to package (default: the model's median run)")

    worker = commands.add_parser("worker", help="a long-running worker of a shared study")
    worker.add_argument("--study", required=True, type=_study,
                        help="study name (shared by the workers)")
    worker.add_argument("--config", required=True, type=_path, help="search space YAML")
    worker.add_argument("--max-trials", type=_trial_count,
                        help="stop when the study holds N finished trials (all workers; "
                        "default: no limit)")
    worker.add_argument("--timeout", type=_timeout,
                        help="stop after S seconds (default: no limit)")
    _add_placement(worker)
    _add_packing(worker)
    worker.add_argument("--artifact-dir", type=_optional_path,
                        help="as for search (a shared folder)")
    worker.add_argument("--checkpoint-dir", default="cnnsearch-checkpoints",
                        type=_optional_path,
                        help="per-trial checkpoints for resuming retries ('' disables)")
    worker.add_argument("--heartbeat-interval", type=_heartbeat, default=None,
                        help="seconds between heartbeats (default 10)")
    worker.add_argument("--grace-period", type=_grace, default=None,
                        help="heartbeat age that makes a trial stale (default 60)")
    _add_storage(worker)

    create = commands.add_parser("create-study", help="create a study (one-shot, idempotent)")
    create.add_argument("--study", required=True, type=_study, help="study name")
    create.add_argument("--config", required=True, type=_path, help="search space YAML")
    create.add_argument("--artifact-dir", type=_optional_path,
                        help=f"artifact folder the study records for the dashboard (default: "
                        f"${ARTIFACT_ENV}, else {DEFAULT_ARTIFACT_DIR})")
    create.add_argument("--prepare-data", action="store_true",
                        help="load the config's dataset once first (downloading it when the "
                        "config says download: true), so workers sharing the data directory "
                        "find it there")
    _add_storage(create)

    reap = commands.add_parser("reap", help="fail and retry trials whose worker died")
    reap.add_argument("--study", required=True, type=_study, help="study name")
    reap.add_argument("--grace-period", type=_grace, default=None,
                      help="heartbeat age that makes a trial stale (default 60)")
    _add_storage(reap)

    proxy = commands.add_parser(
        "proxy", help="serve the storage to many workers on a bounded number of database "
        "connections (workers: --storage grpc://HOST:PORT; no authentication)")
    proxy.add_argument("--host", default="127.0.0.1",
                       help="address to listen on; the proxy has no authentication, keep it "
                       "on a private network (0.0.0.0 inside compose or a cluster)")
    proxy.add_argument("--port", type=_port, default=13000, help="0 picks a free port")
    proxy.add_argument("--threads", type=_proxy_threads, default=8,
                       help="storage calls served at once, one database connection each")
    _add_storage(proxy)

    trials = commands.add_parser("trials", help="the results table of a study")
    trials.add_argument("--study", required=True, type=_study, help="study name")
    trials.add_argument("--format", choices=("table", "json"), default="table",
                        help="a table for people, or a JSON list of rows (same fields)")
    _add_storage(trials)

    report = commands.add_parser("report", help="a self-contained HTML report of a study")
    report.add_argument("--study", required=True, type=_study, help="study name")
    report.add_argument("-o", "--output", default="report.html", type=_path,
                        help="HTML file to write")
    report.add_argument("--artifact-dir", type=_optional_path,
                        help=f"artifact folder (default: the one the study was searched with, "
                        f"else ${ARTIFACT_ENV}, else {DEFAULT_ARTIFACT_DIR})")
    report.add_argument("--models", action="append", default=[], metavar="DIR", type=_path,
                        help="a `cnnsearch train --out` folder, or a folder of them: the "
                        "report links the model cards of this study's retrained designs "
                        "(repeatable)")
    _add_storage(report)

    dashboard = commands.add_parser("dashboard", help="optuna-dashboard with the LRRT plots "
                                    "(no authentication)")
    dashboard.add_argument("--artifact-dir", type=_optional_path,
                           help=f"artifact folder (default: the one the studies were searched "
                           f"with, else ${ARTIFACT_ENV}, else {DEFAULT_ARTIFACT_DIR})")
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to listen on; the dashboard has no authentication, "
                           "keep it on the loopback")
    dashboard.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    dashboard.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                           type=_host_name,
                           help="a host name the dashboard answers to besides localhost, IP "
                           "addresses and, with --host 0.0.0.0, this machine's names (e.g. "
                           "the name a reverse proxy forwards); repeatable. Requests naming "
                           "any other host get 403 (no DNS rebinding)")
    _add_storage(dashboard)
    for command in commands.choices.values():
        _add_verbosity(command, argparse.SUPPRESS)
    return parser
