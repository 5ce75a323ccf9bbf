"""What each ``cnnsearch`` command does with its parsed arguments: resolve them (storage,
device, artifact folder), call the module that does the work, print the outcome."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from search.errors import UserError
from search.record.study import artifact_folder
from search.views.output_files import output_file, output_folder, write_output
from search.views.progress import Output

if TYPE_CHECKING:
    from search.config import SearchConfig
    from search.service.devices import Card, CudaInventory
    from search.service.packed_workers import PackedRun
    from search.service.worker import WorkerOptions


def cmd_search(args: argparse.Namespace, output: Output) -> None:
    from dataclasses import replace

    from search.config import load_config, override_keys
    from search.service.devices import place_process, use_threads
    from search.service.local_search import SearchInterrupted, run_packed_search, run_search
    from search.service.stop_flag import StopFlag
    from search.service.storage import open_storage, redact, resolve_storage_url
    from search.service.trial_loop import DEFAULT_GRACE_SECONDS, DEFAULT_HEARTBEAT_SECONDS
    from search.service.worker import WorkerOptions

    config = override_keys(load_config(args.config), args.set)
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    artifact_dir = artifact_folder(args.artifact_dir)
    _check_folders(artifact_dir, args.checkpoint_dir)  # before any study exists
    url = resolve_storage_url(args.storage)
    study_name = args.study or config.study
    n_trials = args.n_trials or config.n_trials or (None if args.timeout else 10)
    options = WorkerOptions(study_name=study_name, artifact_dir=artifact_dir,
                            checkpoint_dir=args.checkpoint_dir or None)
    packed = _packed_run(args, config, url, options, output)  # before any storage
    if packed is None:
        device, placement = place_process(args.device)
        use_threads(args.threads, device)
    # Heartbeats: a search killed mid-trial leaves no trial RUNNING forever; the next
    # search (or worker, or `cnnsearch reap`) fails it and queues a retry.
    storage = open_storage(url, heartbeat_interval=DEFAULT_HEARTBEAT_SECONDS,
                           grace_period=DEFAULT_GRACE_SECONDS, retry_stale=True)
    try:
        if packed is not None:
            study = run_packed_search(config, study_name=study_name, storage=storage, url=url,
                                      n_trials=n_trials, timeout=args.timeout, run=packed[0],
                                      inventory=packed[1], stop=StopFlag(), output=output,
                                      worker_main=packed_worker_main)
        else:
            study = run_search(
                config, study_name=study_name, storage=storage, n_trials=n_trials,
                timeout=args.timeout, device=device, artifact_dir=artifact_dir,
                checkpoint_dir=args.checkpoint_dir or None, stop=StopFlag(), output=output,
                placement=placement,
            )
    except SearchInterrupted as stopped:  # Ctrl-C: the trial is checkpointed and queued
        print(stopped.line, file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    if output.quiet:  # -q: the final table only
        return
    # Quoted for a shell: a study name or URL may hold spaces, quotes or `$`.
    storage_flag = f" --storage {shlex.quote(redact(url))}" if args.storage else ""
    name = shlex.quote(study.study_name)
    print("\nnext:")
    print(f"  cnnsearch trials --study {name}{storage_flag}")
    print(f"  cnnsearch report --study {name}{storage_flag} -o report.html")
    print(f"  cnnsearch dashboard{storage_flag}   (optuna-dashboard with the LRRT plots)")
    pareto = " --pareto" if config.multi_objective else ""  # the front, not the top 3
    print(f"  cnnsearch export --study {name}{storage_flag}{pareto} -o best.yaml")
    print("  cnnsearch train --from best.yaml --rank 1 --repeats 5")


def _check_folders(artifact_dir: str | None, checkpoint_dir: str | None) -> None:
    """The folders a search or worker writes into, created and proven writable before any
    study exists (found out mid-trial otherwise); '' or None turns the feature off."""
    for folder, flag in ((artifact_dir, "--artifact-dir"), (checkpoint_dir, "--checkpoint-dir")):
        if folder:
            output_folder(folder, flag)


def _packed_run(args: argparse.Namespace, config: SearchConfig, url: str,
                options: WorkerOptions, output: Output
                ) -> tuple[PackedRun, CudaInventory] | None:
    """What ``--trials-per-gpu`` asks for: the run every worker process gets and the cards
    they are packed on (``--device auto``: every visible card; ``cuda:N``: that one).
    None without the option."""
    if args.trials_per_gpu is None:
        return None
    import torch

    from search.errors import UserError
    from search.service.devices import CudaInventory, checked_device, placement_dir
    from search.service.packed_workers import PackedRun
    from search.service.packing import PackingPolicy

    only = None
    if args.device not in (None, "", "auto"):
        device = checked_device(args.device)
        if device.type != "cuda":
            raise UserError("--trials-per-gpu packs trials on GPUs; on the CPU run more "
                            "workers instead (each takes its share of the cores)")
        only = device.index or 0
    if not torch.cuda.is_available():
        raise UserError("--trials-per-gpu: no CUDA GPU is visible")
    per_gpu = None if args.trials_per_gpu == "auto" else args.trials_per_gpu
    policy = PackingPolicy(per_gpu, cap=args.max_trials_per_gpu)
    run = PackedRun(config, url, options, policy, placement_dir(),
                    verbosity=output.verbosity, threads=args.threads or 1)
    return run, CudaInventory(only)


def packed_worker_main(run: PackedRun, card: Card, timeout: float | None) -> None:
    """One packed worker process (``--trials-per-gpu``), its output set up as this
    command's (``-q``/``-v``): spawned, so it is a module-level function."""
    from search.cli.output import configured_output
    from search.service.packed_workers import run_packed_worker

    with configured_output(run.verbosity) as output:
        run_packed_worker(run, card, timeout, output)


def cmd_lrrt(args: argparse.Namespace, output: Output) -> None:
    from search.config import load_config
    from search.jobs.single_lrrt import fix_space, single_range_test
    from search.service.devices import resolve_device, use_threads
    from search.views.progress import RangeTestProgress

    config = load_config(args.config)
    if not output.quiet:
        print(_choices_line(config, fix_space(config, args.set), args.set), flush=True)
    out_dir = output_folder(args.out, "--out")  # before the range test runs
    device = resolve_device(args.device)
    use_threads(args.threads, device)
    trial_config, result, json_path, html_path = single_range_test(
        config, args.set, device, out_dir,
        progress=RangeTestProgress(sys.stdout, output=output),
    )
    summary = result.summary
    bounds = summary.bounds
    # no epoch ended (a fractional-epoch test): no validation was measured, '-' as the tables
    val = "-" if summary.best_val_accuracy is None else f"{summary.best_val_accuracy:.4f}"
    print(f"{trial_config.name}: best smoothed accuracy {summary.score:.4f}, "
          f"best val accuracy {val}, "
          f"diverged {summary.diverged}, "
          + (f"bounds {bounds[0]:.4g}..{bounds[1]:.4g} ({summary.bound_rule})" if bounds
             else "no bounds"))
    print(f"wrote {json_path} and {html_path}")


def _choices_line(config: SearchConfig, fixed: SearchConfig, assignments: list[str]) -> str:
    """Which value ``cnnsearch lrrt`` uses for each space dimension that had a choice and
    applies to the design (no SGD momentum for Adam, no vgg depth for a thesis design)."""
    from dataclasses import fields

    from search.jobs.single_lrrt import used_dimensions

    def shown(value: object) -> str:
        if isinstance(value, tuple | list):
            return "[" + ", ".join(shown(v) for v in value) + "]"
        return str(value).lower() if isinstance(value, bool) else str(value)

    set_keys = {a.partition("=")[0].strip().removeprefix("space.") for a in assignments}
    used = used_dimensions(fixed)
    by_set, first = [], []
    for dimension in fields(config.space):
        chosen = getattr(fixed.space, dimension.name)
        if chosen is None:  # an optional dimension left to its section's default
            continue
        value = f"{dimension.name}={shown(chosen[0])}"
        if dimension.name in set_keys:
            by_set.append(value)
        elif len(getattr(config.space, dimension.name) or ()) > 1 and dimension.name in used:
            first.append(value)
    return (f"fixed by --set: {', '.join(by_set) or 'none'}; "
            f"first choice used: {', '.join(first) or 'none'}")


def cmd_export(args: argparse.Namespace, output: Output) -> None:
    from search.jobs.export import dump_export, export_best, export_pareto, untrusted_trials
    from search.service.storage import load_study, open_storage, resolve_storage_url

    target = output_file(args.output, "-o") if args.output else None  # before any work
    url = resolve_storage_url(args.storage)
    study = load_study(args.study, open_storage(url, read_only=True), url)
    document = export_pareto(study) if args.pareto else export_best(study, args.top)
    left_out = untrusted_trials(study)
    if left_out:
        print(f"note: left out trial(s) {', '.join(map(str, left_out[:20]))}: their values "
              "were not recorded by cnnsearch (told from outside, e.g. the dashboard)",
              file=sys.stderr, flush=True)
    text = dump_export(document, args.format)
    if target is not None:
        write_output(target, text, "-o")
        print(f"wrote {target}")
    else:
        sys.stdout.write(text)


def cmd_train(args: argparse.Namespace, output: Output) -> None:
    from search.jobs.export import load_export
    from search.jobs.retrain import model_line, retrain, test_line, with_export_split
    from search.service.devices import resolve_device, use_threads

    config, bounds, entry = load_export(args.source, args.rank)
    config = with_export_split(config, entry)
    out = Path(args.out)  # made and checked by retrain, before any epoch is trained
    device = resolve_device(args.device)
    use_threads(args.threads, device)
    source = {"export": str(args.source), "rank": args.rank,
              **{key: entry[key] for key in ("study", "trial", "exported_at") if key in entry},
              "search_score": entry.get("score")}
    summary = retrain(config, bounds, epochs=args.epochs or config.train.epochs,
                      repeats=args.repeats, device=device, out_dir=out, source=source,
                      portable=None if args.portable == "none" else args.portable,
                      output=output)
    print(json.dumps({k: summary[k] for k in ("name", "epochs", "repeats", "split",
                                                "median_best_val_accuracy",
                                                "median_final_val_accuracy",
                                                "median_test_accuracy")}))
    print(test_line(summary))
    print(model_line(summary))
    portable = "".join(f", {name}" for name in summary["portable"])
    print(f"wrote {out / 'model.json'}, {summary['repeats']} weight file(s), "
          f"{out / 'model_card.html'}{portable} and summary.json")
    if not output.quiet:
        print(f"next:\n  cnnsearch predict --model {shlex.quote(str(out))} IMAGE...")


def cmd_predict(args: argparse.Namespace, output: Output) -> None:
    from search.jobs.predict import FORMATTERS, folder_images, image_list, predict
    from search.service.devices import resolve_device, use_threads
    from search.trained.manifest import read_manifest

    if bool(args.images) == bool(args.folder):
        raise UserError("predict needs IMAGE files or --folder PATH (one of the two)")
    if args.runtime == "onnx" and args.device not in ("auto", "cpu"):
        raise UserError(f"--runtime onnx runs on the CPU: leave --device out or give cpu, "
                        f"not {args.device}")
    device = resolve_device("cpu" if args.runtime == "onnx" else args.device)
    manifest = read_manifest(args.model)
    images = folder_images(args.folder, manifest) if args.folder else image_list(args.images)
    if args.threads:
        use_threads(args.threads, device)
    result = predict(manifest, images, top=args.top, seed=args.seed, device=device,
                     runtime=args.runtime)
    sys.stdout.write(FORMATTERS[args.format](result))


def cmd_package(args: argparse.Namespace, output: Output) -> None:
    from search.trained.manifest import read_manifest
    from search.trained.portable import add_portable

    manifest = read_manifest(args.model)
    manifest, entry = add_portable(manifest, args.format, args.seed)
    manifest.write()
    check = entry["check"]
    print(f"wrote {manifest.folder / entry['file']} and {entry['json']} (run seed "
          f"{entry['seed']}; checked on {check['images']} images with {check['runtime']}: "
          f"largest logit difference {check['max_abs_difference']:.2g})")


def cmd_trials(args: argparse.Namespace, output: Output) -> None:
    from search.service.storage import load_study, open_storage, resolve_storage_url
    from search.views.results import (
        objective_names,
        row_fields,
        study_table,
        summary_line,
        trial_row,
    )

    url = resolve_storage_url(args.storage)
    study = load_study(args.study, open_storage(url, read_only=True), url)
    if args.format == "json":  # the table's rows, for scripts: one object per trial
        names = objective_names(study)
        rows = [row_fields(trial_row(t, names)) for t in study.get_trials(deepcopy=False)]
        print(json.dumps([{k: _finite(v) for k, v in row.items()} for row in rows], indent=2))
        return
    print(study_table(study))
    print("\n" + summary_line(study))


def _finite(value: object) -> object:
    """JSON has no NaN or infinity: those become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple | list):
        return [_finite(v) for v in value]
    return value


def cmd_report(args: argparse.Namespace, output: Output) -> None:
    from search.service.storage import load_study, open_storage, redact, resolve_storage_url
    from search.views.report import write_report

    target = output_file(args.output, "-o")  # before the report is built
    url = resolve_storage_url(args.storage)
    study = load_study(args.study, open_storage(url, read_only=True), url)
    path = write_report(study, target, source=redact(url), artifact_dir=args.artifact_dir,
                        models=args.models)
    print(f"wrote {path} ({len(study.trials)} trials); open it in a browser, no network needed")


def cmd_dashboard(args: argparse.Namespace, output: Output) -> None:
    from search.service.storage import (
        open_storage,
        redact,
        resolve_storage_url,
        sqlite_write_problem,
    )
    from search.views.dashboard import serve

    url = resolve_storage_url(args.storage)
    # A database nobody may write is still shown; the dashboard's edits then fail there.
    read_only = sqlite_write_problem(url) is not None
    if read_only:
        print(f"note: storage {redact(url)} is read-only here: the dashboard shows it, and "
              "cannot save changes to it", file=sys.stderr, flush=True)
    serve(open_storage(url, must_exist=True, read_only=read_only), redact(url),
          args.artifact_dir, args.host, args.port, args.allowed_host)


def cmd_worker(args: argparse.Namespace, output: Output) -> None:
    from search.config import load_config, override_keys
    from search.errors import UserError
    from search.service.devices import place_process, use_threads
    from search.service.packed_workers import run_packed_workers
    from search.service.stop_flag import StopFlag
    from search.service.storage import resolve_storage_url
    from search.service.trial_loop import DEFAULT_GRACE_SECONDS, DEFAULT_HEARTBEAT_SECONDS
    from search.service.worker import WorkerOptions, run_worker

    heartbeat = args.heartbeat_interval or DEFAULT_HEARTBEAT_SECONDS
    grace = args.grace_period or DEFAULT_GRACE_SECONDS
    if grace <= heartbeat:  # checked together: each flag alone has its own bounds
        raise UserError(f"--grace-period ({grace} s) must be longer than --heartbeat-interval "
                        f"({heartbeat} s), or every live trial is reaped between two beats")
    stop = StopFlag().install()
    config = override_keys(load_config(args.config), args.set)
    artifact_dir = artifact_folder(args.artifact_dir)
    _check_folders(artifact_dir, args.checkpoint_dir)  # before any study exists
    options = WorkerOptions(
        study_name=args.study, max_trials=args.max_trials, timeout=args.timeout,
        artifact_dir=artifact_dir, checkpoint_dir=args.checkpoint_dir or None,
        heartbeat_interval=heartbeat, grace_period=grace,
    )
    url = resolve_storage_url(args.storage)
    packed = _packed_run(args, config, url, options, output)
    if packed is not None:
        outcome = run_packed_workers(*packed, stop=stop, output=output,
                                     worker_main=packed_worker_main)
        if outcome.user_error:
            raise UserError("the workers stopped on a configuration or data error (their "
                            "message is above)")
        return
    device, placement = place_process(args.device)
    use_threads(args.threads, device)
    run_worker(config, url, options, device, stop=stop, output=output, placement=placement)


def cmd_create_study(args: argparse.Namespace, output: Output) -> None:
    from search.config import load_config
    from search.service.storage import open_storage, redact, resolve_storage_url
    from search.service.study import open_search_study

    config = load_config(args.config)
    if args.prepare_data:
        _prepare_data(config)
    url = resolve_storage_url(args.storage)
    storage = open_storage(url, wait_seconds=60.0)
    study = open_search_study(args.study, storage, config,
                              artifact_dir=artifact_folder(args.artifact_dir))
    print(f"study '{study.study_name}' ready in {redact(url)} "
          f"({len(study.trials)} trials so far)")


def _prepare_data(config: SearchConfig) -> None:
    """Load the dataset once (downloading it if the config allows) and check the space fits
    it, so that workers sharing the data directory start with the files in place."""
    from search.method.prepared_data import check_space_fits, load_data

    dataset = load_data(config.dataset, config.seed)
    check_space_fits(config, dataset)
    print(f"data: {dataset.name} ready in {dataset.source} ({len(dataset.train_labels)} train "
          f"/ {len(dataset.val_labels)} validation images)")


def cmd_reap(args: argparse.Namespace, output: Output) -> None:
    from search.service.reaper import reap
    from search.service.storage import load_study, open_storage, resolve_storage_url
    from search.service.trial_loop import DEFAULT_GRACE_SECONDS

    url = resolve_storage_url(args.storage)
    grace = args.grace_period or DEFAULT_GRACE_SECONDS
    storage = open_storage(url, must_exist=True, heartbeat_interval=max(1, grace // 6),
                           grace_period=grace, retry_stale=True)
    study = load_study(args.study, storage, url)
    failed = reap(study)
    print(f"reaped {len(failed)} stale trial(s)"
          + (f": {', '.join(map(str, failed))} (retries queued)" if failed else ""))


def cmd_proxy(args: argparse.Namespace, output: Output) -> None:
    import asyncio
    import signal

    from search.errors import UserError
    from search.service.proxy import LOCK_CONNECTIONS, POOL_OVERFLOW, serve
    from search.service.proxy_address import is_proxy_url
    from search.service.storage import open_storage, redact, resolve_storage_url
    from search.service.trial_loop import DEFAULT_GRACE_SECONDS, DEFAULT_HEARTBEAT_SECONDS

    url = resolve_storage_url(args.storage)
    if is_proxy_url(url):
        raise UserError(f"the proxy needs a database URL, not another proxy ('{url}'): set "
                        "--storage or $CNNSEARCH_STORAGE to postgresql://...")
    storage = open_storage(url, wait_seconds=60.0, heartbeat_interval=DEFAULT_HEARTBEAT_SECONDS,
                           grace_period=DEFAULT_GRACE_SECONDS, pool_size=args.threads,
                           pool_overflow=POOL_OVERFLOW)

    def ready(port: int) -> None:
        print(f"cnnsearch proxy: {redact(url)} served on grpc://{args.host}:{port} "
              f"(at most {args.threads + POOL_OVERFLOW} storage + {LOCK_CONNECTIONS} lock "
              "connections; no authentication: keep it on a private network)", flush=True)

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stopping.set)
        await serve(storage, url, args.host, args.port, threads=args.threads, ready=ready,
                    stopping=stopping)

    try:
        asyncio.run(run())
    except OSError as error:
        raise UserError(str(error)) from None
    print("cnnsearch proxy: stopped", flush=True)


COMMANDS: dict[str, Callable[[argparse.Namespace, Output], None]] = {
    "search": cmd_search,
    "lrrt": cmd_lrrt,
    "export": cmd_export,
    "train": cmd_train,
    "predict": cmd_predict,
    "package": cmd_package,
    "trials": cmd_trials,
    "report": cmd_report,
    "dashboard": cmd_dashboard,
    "worker": cmd_worker,
    "create-study": cmd_create_study,
    "reap": cmd_reap,
    "proxy": cmd_proxy,
}
