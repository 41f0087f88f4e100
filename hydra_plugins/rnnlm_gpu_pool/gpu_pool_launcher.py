"""`hydra/launcher=gpu_pool`: a sweep's jobs run side by side on one machine, each on a GPU of its own.

Every job is a fresh process (spawned, so no CUDA state is inherited) that first claims a card from the
machine-wide lock-file pool (rnnlm.sweeps.gpu_pool), sets CUDA_VISIBLE_DEVICES to it, and only then runs the
training function. At most `n_jobs` jobs run at once (default: one per visible GPU); when one ends,
the next starts on the card it freed. A job that fails or dies frees its card and the others go on;
Hydra reports the failures when the sweep ends. With no GPUs the jobs run on the CPU, `n_jobs` at a time
(default 1: two trainings on the same cores only slow each other down).

Hydra discovers this module by its place in the `hydra_plugins` namespace package and imports it in
every Hydra app, so it imports nothing heavy.
"""

import importlib
import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from rnnlm.sweeps.gpu_pool import DEFAULT_LOCK_DIR, DevicePool, visible_gpus

log = logging.getLogger(__name__)


# No `from __future__ import annotations` here: Hydra runs plugin modules outside sys.modules, where
# dataclasses cannot resolve string annotations.
@dataclass
class GpuPoolLauncherConf:
    _target_: str = "hydra_plugins.rnnlm_gpu_pool.gpu_pool_launcher.GpuPoolLauncher"
    n_jobs: int | None = None  # jobs at once; default one per GPU (1 without GPUs)
    devices: list[str] | None = None  # CUDA_VISIBLE_DEVICES entries to use; default every visible GPU
    lock_dir: str = "${oc.env:RNNLM_GPU_LOCK_DIR," + DEFAULT_LOCK_DIR + "}"  # one pool per machine
    poll_s: float = 2.0  # how often a job waiting for a card looks again
    extra_env: dict[str, str] = field(default_factory=dict)  # set in every job before it starts


ConfigStore.instance().store(group="hydra/launcher", name="gpu_pool", node=GpuPoolLauncherConf, provider="rnnlm")


@dataclass
class _TaskRef:
    """The task function by name: the function Hydra hands over is wrapped by @hydra.main, so pickle cannot
    find it by reference. Calling the module's attribute with a config goes straight to the task."""

    module: str
    name: str

    def __call__(self, cfg: DictConfig) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(cfg)


def _portable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _portable_return(ret: JobReturn) -> JobReturn:
    """The JobReturn with plain configs: Hydra loads plugin modules twice (once by scanning), so the
    structured-config classes inside a job's config are not the ones pickle finds by name."""

    def plain(cfg: DictConfig | None) -> DictConfig | None:
        return None if cfg is None else OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))

    value = ret._return_value
    return JobReturn(
        overrides=list(ret.overrides or []),
        cfg=plain(ret.cfg),
        hydra_cfg=plain(ret.hydra_cfg),
        working_dir=ret.working_dir,
        task_name=ret.task_name,
        status=ret.status,
        _return_value=_portable(value) if ret.status == JobStatus.FAILED else value,
    )


def _child(conn, pool: DevicePool, poll_s: float, env: dict[str, str], payload: bytes) -> None:
    """One job, in its own process: claim a card, pin it, run, send the JobReturn back."""
    hydra_context, task, sweep_config, singletons = pickle.loads(payload)
    # Singleton.set_state minus its OmegaConf resolvers (closures, unpicklable): the child registered
    # its own when it imported the app, and setup_globals adds Hydra's.
    Singleton._instances = singletons
    Plugins.instance()
    setup_globals()
    os.environ.update(env)
    num = sweep_config.hydra.job.num

    def waiting() -> None:
        print(f"[gpu_pool] job #{num} waits for a free GPU (all of {pool.devices} are held)", flush=True)

    with pool.claim(poll_s=poll_s, on_wait=waiting) as device:
        if device is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = device
        with open_dict(sweep_config):
            sweep_config.hydra.job.env_set["CUDA_VISIBLE_DEVICES"] = "" if device is None else device
        ret = run_job(
            hydra_context=hydra_context,
            task_function=task,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    conn.send(_portable_return(ret))
    conn.close()


class GpuPoolLauncher(Launcher):
    def __init__(
        self,
        n_jobs: int | None = None,
        devices: list[str] | None = None,
        lock_dir: str = DEFAULT_LOCK_DIR,
        poll_s: float = 2.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.n_jobs, self.devices, self.lock_dir = n_jobs, devices, lock_dir
        self.poll_s, self.extra_env = poll_s, dict(extra_env or {})
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def _task_ref(self) -> _TaskRef:
        fn = self.task_function
        module = fn.__module__
        if module == "__main__" and getattr(sys.modules["__main__"], "__spec__", None) is not None:
            module = sys.modules["__main__"].__spec__.name  # started with `python -m package.module`
        return _TaskRef(module, fn.__name__)

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

        devices = [str(d) for d in self.devices] if self.devices is not None else visible_gpus()
        n_jobs = self.n_jobs or max(1, len(devices))
        if devices and n_jobs > len(devices):
            log.warning("n_jobs=%d but %d GPUs: extra jobs wait for a free card", n_jobs, len(devices))
        pool = DevicePool(devices, self.lock_dir)
        where = f"GPUs {','.join(devices)}" if devices else "the CPU (no GPU visible)"
        log.info("Launching %d jobs, %d at a time, on %s", len(job_overrides), n_jobs, where)

        ctx = mp.get_context("spawn")
        task, state = self._task_ref(), Singleton.get_state()["instances"]
        pending = list(enumerate(job_overrides, start=initial_job_idx))
        running: dict[int, tuple[Any, Any, Any]] = {}  # job index -> (process, connection, overrides)
        results: dict[int, JobReturn] = {}
        while pending or running:
            while pending and len(running) < n_jobs:
                idx, overrides = pending.pop(0)
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = idx
                    sweep_config.hydra.job.num = idx
                payload = pickle.dumps((self.hydra_context, task, sweep_config, state))
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_child, args=(send, pool, self.poll_s, self.extra_env, payload), name=f"job{idx}"
                )
                proc.start()
                send.close()  # the child holds the only write end: EOF here means it died
                running[idx] = (proc, recv, overrides)
            ready = mp.connection.wait([conn for _, conn, _ in running.values()])
            for idx in [i for i, (_, conn, _) in running.items() if conn in ready]:
                proc, conn, overrides = running.pop(idx)
                results[idx] = self._collect(idx, proc, conn, overrides)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [results[i] for i in sorted(results)]

    @staticmethod
    def _collect(idx: int, proc, conn, overrides) -> JobReturn:
        try:
            ret = conn.recv()
        except EOFError:  # exited without a result: sys.exit, a signal, out of memory
            ret = None
        conn.close()
        proc.join()
        if ret is None:
            ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED)
            ret.return_value = RuntimeError(f"job #{idx} exited with code {proc.exitcode} (see its log above)")
            ret.status = JobStatus.FAILED
        return ret
