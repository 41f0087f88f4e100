"""`hydra/launcher=ray`: hydra-ray-launcher's jobs as Ray tasks, every one waited for and reported.

The plugin's own launch gets each job's result in turn, so the first failed point ends the sweep with a
traceback while the others run on unwatched; and a job that stops with rnnlm's one-sentence error calls
sys.exit, which Ray takes for a dead worker and runs again. Here:

- A point that fails (a bad setting, an exception) fails once and is reported in one line, by the overrides
  that set it apart and in its own words; the other points finish; the sweep then exits with 1.
- A point whose worker process dies (killed, out of memory) is run again by Ray up to `remote.max_retries`
  times. It runs in the same folder, where train.py resumes from the checkpoint the dead run left; after the
  last try it is reported like any failure. Nothing waits for ever: Ray reports a dead worker to the sweep.
- Ray started for the sweep (`init.address: null`) is shut down after it; a cluster joined
  (`init.address: auto`) is left running.

Hydra imports this module in every app; it defines the launcher only where the `ray` extra is installed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from rnnlm.sweeps.failed_points import exit_if_failed, last_line, point_label

log = logging.getLogger(__name__)
# Ray 2.59+ starts clusters with token authentication, which a driver uses only when told to.
AUTH_HINT = "; a cluster with token authentication, as Ray 2.59+ starts them, also needs RAY_AUTH_MODE=token here"


def _run_point(hydra_context, sweep_config, task_function, singleton_state):
    """One sweep point in a Ray worker (hydra-ray-launcher's job runner). rnnlm's error exit becomes an
    exception, which Ray reports to the sweep and does not retry (a bad setting fails the same way again)."""
    from hydra_plugins.hydra_ray_launcher._launcher_util import _run_job

    try:
        return _run_job(hydra_context, sweep_config, task_function, singleton_state)
    except SystemExit as stop:
        raise PointFailed(getattr(stop, "sentence", None) or f"it exited with status {stop.code}") from None


class PointFailed(Exception):
    """A sweep point ended with an error: its one sentence."""


def shut_down(ray) -> None:
    """Ray started by this sweep, stopped with every process it started. (`ray.shutdown()` ends the raylet
    and GCS, but the workers, each holding torch, lingered for minutes after the sweep had ended.)"""
    import psutil

    started = psutil.Process().children(recursive=True)  # Ray's: the sweep starts no other process
    ray.shutdown()
    alive = [p for p in started if p.is_running()]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, left = psutil.wait_procs(alive, timeout=10)
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.kill()


def fit_to_nodes(remote: dict, nodes: list[dict], accelerator: str | None, started_here: bool) -> dict:
    """The job's request, fitted to what is there where the settings leave it open: with
    `trainer.accelerator=auto` (the default trainer) and no GPU in the cluster, jobs run on CPUs; on the Ray
    this sweep started (this machine), a job asks for at most the CPUs the machine has."""
    remote = dict(remote)
    most_gpus = max((r.get("GPU", 0) for r in nodes), default=0)
    if accelerator == "auto" and remote.get("num_gpus") and not most_gpus:
        log.info("no GPU in the Ray cluster and trainer.accelerator=auto: the jobs run on CPUs")
        remote["num_gpus"] = 0
    most_cpus = max((r.get("CPU", 0) for r in nodes), default=0)
    if started_here and most_cpus and (remote.get("num_cpus") or 0) > most_cpus:
        log.info("this machine has %g CPUs: each job asks for %g (hydra.launcher.ray.remote.num_cpus=%g)",
                 most_cpus, most_cpus, remote["num_cpus"])  # fmt: skip
        remote["num_cpus"] = most_cpus
    return remote


def check_fits(nodes: list[dict], remote: dict) -> None:
    """One sentence (SystemExit) for a job bigger than every node of the cluster (`nodes`: each one's Ray
    resources), which Ray would keep pending for ever (a GPU asked of a CPU machine, say)."""
    for key, resource in (("num_gpus", "GPU"), ("num_cpus", "CPU")):
        want, most = remote.get(key) or 0, max((r.get(resource, 0) for r in nodes), default=0)
        if want > most:
            fix = " (0 runs on CPUs: trainer=cpu sets it so)" if resource == "GPU" else ""
            sys.exit(f"error: hydra.launcher.ray.remote.{key}={want:g} is more than any node of the Ray cluster has "
                     f"(at most {most:g} {resource}): set it to at most {most:g}{fix}.")  # fmt: skip


def join(ray, init: dict) -> None:
    """`ray.init`, or one sentence (SystemExit) where the cluster it names cannot be reached."""
    address = init.get("address")
    refused = unreachable(address)
    try:
        if refused is None:
            try:
                ray.init(**init)
            except ValueError:  # a Ray already running here was found and joined: it takes no store size
                if init.pop("object_store_memory", None) is None:
                    raise
                ray.init(**init)
            return
    except ConnectionError as err:
        refused = last_line(str(err)) + (AUTH_HINT if not os.environ.get("RAY_AUTH_MODE") else "")
    sys.exit(f"error: hydra.launcher.ray.init.address={address} reached no Ray cluster ({refused}): start one there "
             "(ray start --head) or give its address.")  # fmt: skip


def unreachable(address: str | None) -> str | None:
    """Why nothing answers at a cluster's host:port, checked before Ray, which waits for ever on an address
    where nothing listens (None: it answers, or the address is Ray's `auto`, found or refused at once)."""
    if not address or address in ("auto", "local"):
        return None
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except ValueError:
        return "it is not HOST:PORT"
    except OSError as err:
        return err.strerror or str(err)
    return None


def failure(err: BaseException, retries: int) -> str:
    """What a failed Ray task says, in one line."""
    import ray.exceptions as rex

    if isinstance(err, rex.RayTaskError):  # the job raised: its own exception
        cause = getattr(err, "cause", None)
        return cause.args[0] if isinstance(cause, PointFailed) else last_line(str(cause or err))
    tries = f"{retries + 1} tries" if retries else "no retries (remote.max_retries=0)"
    return f"its worker process died ({type(err).__name__}, {tries}): {last_line(str(err))}"


def wait(ray, tasks: dict, job_overrides, initial_job_idx: int, retries: int) -> tuple[dict, list[str]]:
    """Every task to its end (a dead worker is an error Ray reports, not a wait): the results, and a line for
    each point that failed."""
    from hydra.core.utils import JobStatus

    results, failed = {}, []
    for idx, task in tasks.items():
        try:
            ret = ray.get(task)
            if ret.status == JobStatus.FAILED:  # Hydra caught the job's exception (kept in the return, not raised)
                raise PointFailed(last_line(str(ret._return_value)))
            results[idx] = ret
            continue
        except ray.exceptions.RayError as err:  # first: a job's own error arrives as an instance of both
            why = failure(err, retries)
        except PointFailed as err:
            why = str(err)
        point = point_label(job_overrides[idx - initial_job_idx], job_overrides)
        failed.append(f"job #{idx} ({point}; Ray task {task.task_id().hex()[:12]}) failed: {why}")
    return results, failed


try:
    from hydra.core.singleton import Singleton
    from hydra.core.utils import configure_log, setup_globals
    from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
    from omegaconf import OmegaConf, open_dict
except ImportError:  # the ray extra is not installed: conf/hydra/launcher/ray.yaml says how to get it
    RayLauncher = None

if RayLauncher is not None:

    class RnnlmRayLauncher(RayLauncher):
        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
            import ray

            setup_globals()
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            sweep_dir = Path(str(self.config.hydra.sweep.dir))
            sweep_dir.mkdir(parents=True, exist_ok=True)
            init = OmegaConf.to_container(self.ray_cfg.init, resolve=True) or {}
            remote = OmegaConf.to_container(self.ray_cfg.remote, resolve=True) or {}
            started_here = not ray.is_initialized() and not init.get("address")
            if started_here:
                init.setdefault("object_store_memory", 78643200)  # as the plugin: enough for small machines
            if not ray.is_initialized():
                join(ray, init)
            try:
                nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
                remote = fit_to_nodes(remote, nodes, self.config.trainer.get("accelerator"), started_here)
                check_fits(nodes, remote)
                tasks = self._submit(ray.remote(**remote)(_run_point), job_overrides, initial_job_idx)
                results, failed = wait(ray, tasks, job_overrides, initial_job_idx, int(remote.get("max_retries", 3)))
            finally:
                if started_here:
                    shut_down(ray)
            exit_if_failed(failed, len(tasks))
            return [results[i] for i in sorted(results)]

        def _submit(self, run, job_overrides, initial_job_idx: int) -> dict:
            """One Ray task per point, as the plugin starts them; the tasks by job number, not yet waited for."""
            log.info("Ray launcher: %d jobs, sweep output dir: %s", len(job_overrides), self.config.hydra.sweep.dir)
            tasks = {}
            for idx, overrides in enumerate(job_overrides, initial_job_idx):
                log.info("\t#%d : %s", idx, point_label(overrides, []))
                sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = f"job_id_for_{idx}"  # as the plugin; no scheduler id here
                    sweep_config.hydra.job.num = idx
                tasks[idx] = run.remote(self.hydra_context, sweep_config, self.task_function, Singleton.get_state())
            return tasks
