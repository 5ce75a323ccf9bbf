"""How long ``cnnsearch report``'s HTML takes to render in Chromium, opened from disk.

    python -m benchmarks.micro.report_render [--trials 10] [--repeats 5] [--keep DIR]
                                       [--storage URL --study NAME]

Without ``--storage`` it first runs a real 10-trial Fashion-MNIST search (the demo's space,
sized to take a few minutes on a CPU) into a temporary SQLite file. It then writes the
report and opens it in Debian's headless Chromium (driven by Playwright, every request other
than the file blocked, a fresh browser context per repeat). Two times per open:

- in-page: ``performance.now()`` at the report's last script, i.e. from navigation start
  until the HTML is parsed, plotly.js evaluated and every figure drawn;
- wall: from Playwright's ``goto`` to that point, seen from outside.

Prints a Markdown table for BENCHMARKS.md (issue 4 asks for under 3 s).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import torch

from search.config import parse_config
from search.service.local_search import run_search
from search.service.storage import open_storage
from search.views.report import write_report
from tests.browser import CHROMIUM, browser_missing, chromium, open_report, render_seconds

STUDY_CONFIG = {
    "study": "report-render",
    "seed": 0,
    "dataset": {"name": "fashion-mnist", "train_size": 2000, "val_size": 1000},
    "space": {"blocks": [2, 3], "filters": [4, 8, 16], "optimizer": ["adam", "sgd"],
              "lr_range": [[1.0e-4, 1.0e-2], [1.0e-2, 1.0e-1]], "batch_size": [64]},
    "model": {"l2": 0.0005},
    "lrrt": {"epochs": 1, "sma_periods": 10, "bound_rule": "smith_quarter",
             "compare_rule": "accuracy_rise"},
    "pruner": {"warmup_trials": 3, "after_lrrt": "median"},
    "train": {"epochs": 3, "step_size_epochs": 1, "sgd_momentum": 0.9},
}


def make_study(folder: Path, trials: int) -> tuple[str, str]:
    url = f"sqlite:///{folder / 'study.db'}"
    started = time.perf_counter()
    run_search(parse_config(STUDY_CONFIG), study_name=STUDY_CONFIG["study"],
               storage=open_storage(url), n_trials=trials, timeout=None,
               device=torch.device("cpu"), artifact_dir=str(folder / "artifacts"))
    print(f"# search: {trials} trials in {time.perf_counter() - started:.0f} s")
    return url, STUDY_CONFIG["study"]


def chromium_version() -> str:
    try:
        return subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip()
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--storage", help="measure an existing study instead of searching")
    parser.add_argument("--study", default=STUDY_CONFIG["study"])
    parser.add_argument("--keep", help="write the study and report here (default: a "
                        "temporary folder); rerun with --storage sqlite:///DIR/study.db")
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        raise SystemExit(f"cannot run: {missing}")

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(args.keep or temp)
        folder.mkdir(parents=True, exist_ok=True)
        url, name = (args.storage, args.study) if args.storage else make_study(folder,
                                                                                args.trials)
        study = optuna.load_study(study_name=name, storage=url)
        path = folder / "report.html"
        started = time.perf_counter()
        write_report(study, path)
        write_seconds = time.perf_counter() - started
        megabytes = path.stat().st_size / 1e6
        states = [t.state.name for t in study.trials]
        in_page, wall = [], []
        with chromium() as browser:
            view = open_report(browser, path)  # warm-up open; checks nothing was fetched
            assert view.offline_requests == [], view.offline_requests
            for _ in range(args.repeats):
                started = time.perf_counter()
                in_page.append(render_seconds(browser, path))
                wall.append(time.perf_counter() - started)

    print(f"\n# {len(states)} trials ({states.count('COMPLETE')} complete, "
          f"{states.count('PRUNED')} pruned), {view.plots} plotly figures, "
          f"report {megabytes:.1f} MB written in "
          f"{write_seconds:.2f} s")
    print(f"# {chromium_version()}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} opens\n")
    print("| measure | median (s) | min (s) | max (s) |")
    print("|---|---|---|---|")
    for label, values in (("in-page: navigation start -> all figures drawn", in_page),
                          ("wall: goto -> all figures drawn", wall)):
        print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | "
              f"{max(values):.2f} |")


if __name__ == "__main__":
    main()
