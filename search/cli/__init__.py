"""The ``cnnsearch`` command line: parses arguments and calls the modules; no logic here.

Every ``UserError`` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from search.errors import UserError
from search.service.storage import ARTIFACT_ENV, DEFAULT_ARTIFACT_DIR, DEFAULT_STORAGE, STORAGE_ENV
from search.service.storage import resolve_artifact_dir as _artifact_dir


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


def cmd_search(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from search.config import load_config
    from search.service.devices import resolve_device
    from search.service.local_search import run_search
    from search.service.storage import open_storage, redact, resolve_storage_url
    from search.service.worker import DEFAULT_GRACE_SECONDS, DEFAULT_HEARTBEAT_SECONDS

    config = load_config(args.config)
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    device = resolve_device(args.device)
    url = resolve_storage_url(args.storage)
    # Heartbeats: a search killed mid-trial leaves no trial RUNNING forever; the next
    # search (or worker, or `cnnsearch reap`) fails it and queues a retry.
    storage = open_storage(url, heartbeat_interval=DEFAULT_HEARTBEAT_SECONDS,
                           grace_period=DEFAULT_GRACE_SECONDS, retry_stale=True)
    study_name = args.study or config.study
    study = run_search(
        config, study_name=study_name, storage=storage,
        n_trials=args.n_trials or config.n_trials or (None if args.timeout else 10),
        timeout=args.timeout, device=device, artifact_dir=_artifact_dir(args.artifact_dir),
    )
    storage_flag = f" --storage '{redact(url)}'" if args.storage else ""
    print("\nnext:")
    print(f"  cnnsearch trials --study {study.study_name}{storage_flag}")
    print(f"  cnnsearch report --study {study.study_name}{storage_flag} -o report.html")
    print(f"  cnnsearch dashboard{storage_flag}   (optuna-dashboard with the LRRT plots)")
    print(f"  cnnsearch export --study {study.study_name}{storage_flag} -o best.yaml")
    print("  cnnsearch train --from best.yaml --rank 1 --repeats 5")


def cmd_lrrt(args: argparse.Namespace) -> None:
    from search.config import load_config
    from search.jobs.single_lrrt import single_range_test
    from search.service.devices import resolve_device

    config = load_config(args.config)
    trial_config, result, json_path, html_path = single_range_test(
        config, args.set, resolve_device(args.device), Path(args.out)
    )
    bounds = result.bounds
    print(f"{trial_config.name}: best smoothed accuracy {result.best_smoothed_accuracy:.4f}, "
          f"best val accuracy {result.best_val_accuracy:.4f}, "
          f"diverged {result.curve.diverged}, "
          + (f"bounds {bounds[0]:.4g}..{bounds[1]:.4g} ({result.bound_rule})" if bounds
             else "no bounds"))
    print(f"wrote {json_path} and {html_path}")


def cmd_export(args: argparse.Namespace) -> None:
    from search.jobs.export import dump_export, export_best
    from search.service.storage import load_study, open_storage, resolve_storage_url

    url = resolve_storage_url(args.storage)
    study = load_study(args.study, open_storage(url, must_exist=True), url)
    text = dump_export(export_best(study, args.top), args.format)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)


def cmd_train(args: argparse.Namespace) -> None:
    from search.jobs.export import load_export
    from search.jobs.retrain import retrain
    from search.service.devices import resolve_device

    config, bounds, _ = load_export(args.source, args.rank)
    device = resolve_device(args.device)
    summary = retrain(config, bounds, epochs=args.epochs or config.train.epochs,
                      repeats=args.repeats, device=device, out_dir=Path(args.out))
    print(json.dumps({k: summary[k] for k in ("name", "epochs", "repeats",
                                                "median_best_val_accuracy",
                                                "median_final_val_accuracy")}))
    print(f"wrote {Path(args.out) / 'summary.json'} and {summary['repeats']} weight file(s)")


def cmd_trials(args: argparse.Namespace) -> None:
    from search.service.storage import load_study, open_storage, resolve_storage_url
    from search.views.results import study_table, summary_line

    url = resolve_storage_url(args.storage)
    study = load_study(args.study, open_storage(url, must_exist=True), url)
    print(study_table(study))
    print("\n" + summary_line(study))


def cmd_report(args: argparse.Namespace) -> None:
    from search.service.storage import load_study, open_storage, redact, resolve_storage_url
    from search.views.report import write_report

    url = resolve_storage_url(args.storage)
    study = load_study(args.study, open_storage(url, must_exist=True), url)
    path = write_report(study, Path(args.output), source=redact(url))
    print(f"wrote {path} ({len(study.trials)} trials); open it in a browser, no network needed")


def cmd_dashboard(args: argparse.Namespace) -> None:
    from search.service.storage import resolve_storage_url
    from search.views.dashboard import serve

    serve(resolve_storage_url(args.storage), args.artifact_dir, args.host, args.port)


def cmd_worker(args: argparse.Namespace) -> None:
    from search.config import load_config
    from search.service.devices import resolve_device
    from search.service.stop_flag import StopFlag
    from search.service.storage import resolve_storage_url
    from search.service.worker import (
        DEFAULT_GRACE_SECONDS,
        DEFAULT_HEARTBEAT_SECONDS,
        WorkerOptions,
        run_worker,
    )

    stop = StopFlag().install()
    config = load_config(args.config)
    options = WorkerOptions(
        study_name=args.study, max_trials=args.max_trials, timeout=args.timeout,
        artifact_dir=_artifact_dir(args.artifact_dir), checkpoint_dir=args.checkpoint_dir or None,
        heartbeat_interval=args.heartbeat_interval or DEFAULT_HEARTBEAT_SECONDS,
        grace_period=args.grace_period or DEFAULT_GRACE_SECONDS,
    )
    run_worker(config, resolve_storage_url(args.storage), options,
               resolve_device(args.device), stop=stop)


def cmd_create_study(args: argparse.Namespace) -> None:
    from search.config import load_config
    from search.service.storage import open_storage, redact, resolve_storage_url
    from search.service.study import open_search_study

    config = load_config(args.config)
    url = resolve_storage_url(args.storage)
    storage = open_storage(url, wait_seconds=60.0)
    study = open_search_study(args.study, storage, config,
                              artifact_dir=_artifact_dir(args.artifact_dir))
    print(f"study '{study.study_name}' ready in {redact(url)} "
          f"({len(study.trials)} trials so far)")


def cmd_reap(args: argparse.Namespace) -> None:
    from search.service.reaper import reap
    from search.service.storage import load_study, open_storage, resolve_storage_url
    from search.service.worker import DEFAULT_GRACE_SECONDS

    url = resolve_storage_url(args.storage)
    grace = args.grace_period or DEFAULT_GRACE_SECONDS
    storage = open_storage(url, must_exist=True, heartbeat_interval=max(1, grace // 6),
                           grace_period=grace, retry_stale=True)
    study = load_study(args.study, storage, url)
    failed = reap(study)
    print(f"reaped {len(failed)} stale trial(s)"
          + (f": {', '.join(map(str, failed))} (retries queued)" if failed else ""))


COMMANDS = {
    "search": cmd_search,
    "lrrt": cmd_lrrt,
    "export": cmd_export,
    "train": cmd_train,
    "trials": cmd_trials,
    "report": cmd_report,
    "dashboard": cmd_dashboard,
    "worker": cmd_worker,
    "create-study": cmd_create_study,
    "reap": cmd_reap,
}


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    from optuna.exceptions import ExperimentalWarning

    # Heartbeats and the retry callback are "experimental" in Optuna; users need not see it.
    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except UserError as error:
        print(f"cnnsearch: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnsearch: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
