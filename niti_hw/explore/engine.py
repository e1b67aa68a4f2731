"""Run tasks on Dask distributed and store each one's rows the moment it finishes.

The client is a LocalCluster sized to the machine (one single-threaded worker process per core)
or, with a scheduler address, an existing cluster. Only this process writes the study folder: a
worker returns rows, never touches the store. A worker that dies is replaced and its task run
again elsewhere (Dask's `distributed.scheduler.allowed-failures`, 3 by default); a task whose
workers die every time is recorded as failed, like any task that fails for its own reason.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from niti_hw.explore.tasks import failed
from niti_hw.extras import import_extra

PRIORITY = {"synth": 20, "accuracy": 10, "estimate": 0}  # long tasks first, estimates fill in


@dataclass
class Task:
    kind: str
    func: object
    args: tuple
    configs: dict  # key -> config of every point the task computes

    @property
    def name(self) -> str:
        return f"{self.kind}-{next(iter(self.configs))}-{len(self.configs)}"


def _distributed():
    return import_extra("distributed", "niti-hw explore")


@contextmanager
def client(scheduler: str | None = None, workers: int | None = None,
           dashboard: str | None = ":8787", log=print):
    """A Dask client for the study; says where the dashboard is."""
    dd = _distributed()
    if scheduler:
        try:
            import dask

            connected = dd.Client(scheduler,  # Dask's own setting: how long to keep trying
                                  timeout=dask.config.get("distributed.comm.timeouts.connect"))
        except (OSError, TimeoutError) as error:
            raise OSError(f"cannot reach the Dask scheduler at {scheduler} ({error}); start one "
                          "with `dask scheduler` and workers with `dask worker ADDRESS`") from None
        cluster = None
    else:
        cluster = dd.LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                  processes=True, dashboard_address=dashboard)
        connected = dd.Client(cluster)
    try:
        where = connected.dashboard_link if dashboard is not None or scheduler else None
        workers_now = len(connected.scheduler_info(n_workers=-1)["workers"])
        log(f"Dask: {connected.scheduler.address}, {workers_now} workers"
            + (f", dashboard {where}" if where else ""))
        yield connected
    finally:
        connected.close()
        if cluster is not None:
            cluster.close()


def run_tasks(dask_client, tasks: list[Task], store, progress: bool = False) -> dict[str, int]:
    """Submit every task, store rows as each finishes; counts of rows stored per status."""
    dd = _distributed()
    futures = {}
    for task in sorted(tasks, key=lambda t: -PRIORITY[t.kind]):
        future = dask_client.submit(task.func, *task.args, key=task.name, pure=False,
                                    priority=PRIORITY[task.kind])
        futures[future] = task
    if progress:
        threading.Thread(target=dd.progress, args=(list(futures),),
                         kwargs={"notebook": False, "multi": False}, daemon=True).start()
    counts = {"ok": 0, "failed": 0}
    for future in dd.as_completed(list(futures)):
        task = futures.pop(future)
        try:
            rows = future.result()
        except dd.KilledWorker as error:  # its workers died every time: a failure of its own
            rows = [failed(key, task.kind, config, error) for key, config in task.configs.items()]
        store.write(task.kind, rows)
        for row in rows:
            counts[row["status"]] += 1
        future.release()
    if progress:
        print(flush=True)
    return counts
