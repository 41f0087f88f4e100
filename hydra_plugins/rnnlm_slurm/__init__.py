"""`hydra/launcher=slurm`: submitit's SLURM launcher, checked before it submits and patient with failed jobs.

- Before anything is submitted, the request is checked against its partition as `sinfo` shows it (an unknown
  partition, or a time limit, CPUs or memory over the partition's, is one sentence), and its null
  `timeout_min`, `cpus_per_task` and `mem_gb` are filled in from it (the MaxTime, what its nodes have),
  said in one log line (`_partitions.fit_request`).
- sbatch refusing the job array (one call, so nothing is left half-submitted) is one sentence quoting SLURM.
- Every job is waited for: each failed point is reported with its overrides and its error, and the
  others finish; the sweep then exits with 1.

Hydra discovers this module by its place in the `hydra_plugins` namespace and imports it in every app: it
defines the launcher only where the `slurm` extra (hydra-submitit-launcher) is installed.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra_plugins.rnnlm_slurm._partitions import _minutes, fit_request  # noqa: F401  (_minutes: for the tests)
from rnnlm.sweeps.failed_points import exit_if_failed, last_line, point_label

log = logging.getLogger(__name__)


def _reason(err: BaseException) -> str:
    """SLURM's own words from a refused sbatch (its 'sbatch: error: ...' lines), else the error's last line."""
    text = str(err)
    said = [m.strip() for m in re.findall(r"sbatch: error: (.*)", text)]
    return "; ".join(said) if said else (text.strip().splitlines() or ["no reason given"])[-1]


# States a job does not leave (a requeued job goes through REQUEUED and PENDING instead).
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


def slurm_state(job_id: str) -> str | None:
    """The job's state as `scontrol` sees it; None once SLURM has forgotten it (MinJobAge after the end).

    Submitit reads states with sacct, which a SLURM without accounting lacks: a job that died without
    writing its result would then be waited for for ever."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=60)
    found = re.search(r"JobState=(\S+)", out.stdout)
    return found.group(1) if out.returncode == 0 and found else None


def _job_error(job, fallback: str | None = None) -> str:
    """The one line a failed job said: rnnlm's `error: ...`, else `fallback` (its pickled exception's last
    line), else the last line of its stderr."""
    try:
        lines = Path(job.paths.stderr).read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    said = [ln.split("error: ", 1)[1] for ln in lines if ln.startswith("error: ")]
    if said or fallback:
        return said[-1] if said else fallback
    lines = [ln for ln in lines if ln.strip() and not ln.startswith("submitit ")]
    return lines[-1] if lines else f"it wrote no log (see {job.paths.folder})"


try:
    from hydra.core.config_store import ConfigStore
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobReturn, filter_overrides
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
    from omegaconf import OmegaConf
except ImportError:  # the slurm extra is not installed: conf/hydra/launcher/slurm.yaml says how to get it
    SlurmLauncher = None

if SlurmLauncher is not None:

    @dataclass
    class RnnlmSlurmConf(SlurmQueueConf):
        """conf/hydra/launcher/slurm.yaml's schema: submitit's, with a `timeout_min` that may be null (then the
        partition's MaxTime, as null `cpus_per_task` and `mem_gb` are what its nodes have: `fit_request`)."""

        _target_: str = "hydra_plugins.rnnlm_slurm.RnnlmSlurmLauncher"
        timeout_min: int | None = None

    ConfigStore.instance().store(group="hydra/launcher", name="rnnlm_slurm", node=RnnlmSlurmConf, provider="rnnlm")

    class RnnlmSlurmLauncher(SlurmLauncher):
        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            import submitit

            self.params.update(fit_request(self.params))  # checked, its nulls filled in from the partition
            try:
                jobs = self._submit(job_overrides, initial_job_idx)
            except submitit.core.utils.FailedJobError as err:
                sys.exit(f"error: SLURM refused the sweep's jobs: {_reason(err)}: fix the hydra.launcher setting "
                         "it names (nothing was submitted).")  # fmt: skip
            return self._wait(jobs, job_overrides, initial_job_idx)

        def _submit(self, job_overrides, initial_job_idx: int) -> list:
            """The sweep as one job array (one sbatch call); its jobs, not yet waited for."""
            import submitit

            params = dict(self.params)
            executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                             slurm_max_num_timeout=params.pop("max_num_timeout"))  # fmt: skip
            generic = set(OmegaConf.structured(BaseQueueConf).keys())  # the rest are slurm_-prefixed
            executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            log.info("SLURM sweep output dir: %s", self.config.hydra.sweep.dir)
            calls = []
            for idx, overrides in enumerate(job_overrides, initial_job_idx):
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                calls.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
            return executor.map_array(self, *zip(*calls, strict=True))

        @staticmethod
        def _wait(jobs, job_overrides, initial_job_idx: int, poll_s: float = 2.0, grace_s: float = 15.0):
            """Every job to its end: its result where it wrote one, else its error line and final state. (A job
            that ended without a result pickle is given `grace_s` for a shared filesystem to show it.)"""
            waiting = dict(enumerate(jobs, initial_job_idx))
            results, failed, ended_at = {}, [], {}
            while waiting:
                for idx, job in list(waiting.items()):
                    if job.paths.result_pickle.exists():
                        del waiting[idx]
                        try:
                            results[idx] = job.results()[0]
                            continue
                        except Exception as err:  # noqa: BLE001  (any job's failure is reported, not raised)
                            why = _job_error(job, fallback=last_line(str(err)))
                        state = "FAILED"
                    else:
                        state = slurm_state(job.job_id)
                        if state is not None and state not in FINAL_STATES:
                            continue  # pending, running or requeued
                        if time.monotonic() - ended_at.setdefault(idx, time.monotonic()) < grace_s:
                            continue
                        del waiting[idx]
                        why, state = _job_error(job), state or "ended"
                    point = point_label(job_overrides[idx - initial_job_idx], job_overrides)
                    failed.append(f"job #{idx} ({point}; SLURM job {job.job_id}, {state}) failed: {why}")
                if waiting:
                    time.sleep(poll_s)
            exit_if_failed(failed, len(jobs))
            return [results[i] for i in sorted(results)]
