"""Storage throughput with a trivial objective: trials/s and ask+tell latency for 1, 4 and
16 concurrent worker processes on PostgreSQL, SQLite and Optuna's journal file storage,
plus the peak number of PostgreSQL connections 16 workers hold.

    python -m benchmarks.micro.storage_throughput [--seconds 8] [--workers 1 4 16]

PostgreSQL is a throwaway local cluster (started as the `postgres` user when run as root),
opened exactly as workers open it (`search.service.storage.open_storage`: small pool, pre-ping).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
from pathlib import Path

import optuna

from search.service.storage import open_storage


def _open(url: str) -> optuna.storages.BaseStorage:
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    return open_storage(url)


def _worker(url: str, study: str, start_at: float, seconds: float, out: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_ = optuna.load_study(study_name=study, storage=_open(url))
    latencies = []
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    while time.time() < end:
        started = time.perf_counter()
        trial = study_.ask()
        study_.tell(trial, 1.0)
        latencies.append(time.perf_counter() - started)
    Path(out).write_text("\n".join(f"{v:.6f}" for v in latencies))


def measure(url: str, workers: int, seconds: float, folder: Path,
            on_run: threading.Event | None = None) -> dict[str, float]:
    study = f"bench-{workers}-{time.monotonic_ns()}"
    optuna.create_study(study_name=study, storage=_open(url))
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0 + 0.25 * workers  # every process imported and connected
    outs = [folder / f"{study}-{i}.txt" for i in range(workers)]
    processes = [context.Process(target=_worker, args=(url, study, start_at, seconds, str(o)))
                 for o in outs]
    for process in processes:
        process.start()
    if on_run is not None:
        on_run.set()
    for process in processes:
        process.join()
    latencies = sorted(float(v) for o in outs for v in o.read_text().split())
    return {
        "trials_per_s": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "trials": len(latencies),
    }


def main() -> None:
    from tests.postgres import start_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="cnnsearch-bench-"))
    server = start_server()
    try:
        backends = {
            "PostgreSQL 15": server.new_database(),
            "SQLite": f"sqlite:///{folder / 'bench.db'}",
            "JournalFileBackend": f"journal:{folder / 'bench.journal'}",
        }
        print(f"# storage throughput: trivial objective (ask + tell), {args.seconds:g} s per "
              f"cell, optuna {optuna.__version__}, {multiprocessing.cpu_count()} CPU cores")
        print("\n| storage | workers | trials/s | p50 ask+tell (ms) | p99 ask+tell (ms) |")
        print("|---|---:|---:|---:|---:|")
        peak = 0
        for name, url in backends.items():
            for workers in args.workers:
                stop = threading.Event()
                running = threading.Event()
                peaks: list[int] = [0]
                database = url.rsplit("/", 1)[1] if name.startswith("PostgreSQL") else None

                def poll(database: str | None = database, running: threading.Event = running,
                         stop: threading.Event = stop, peaks: list[int] = peaks) -> None:
                    running.wait()
                    while not stop.is_set():
                        peaks[0] = max(peaks[0], server.connection_count(database))
                        time.sleep(0.2)

                poller = threading.Thread(target=poll, daemon=True) if database else None
                if poller:
                    poller.start()
                result = measure(url, workers, args.seconds, folder, running)
                stop.set()
                if poller:
                    poller.join()
                if database and workers == max(args.workers):
                    peak = peaks[0]
                print(f"| {name} | {workers} | {result['trials_per_s']:.1f} | "
                      f"{result['p50_ms']:.1f} | {result['p99_ms']:.1f} |", flush=True)
        print(f"\npeak PostgreSQL connections with {max(args.workers)} workers: {peak} "
              "(pg_stat_activity, sampled every 0.2 s)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
