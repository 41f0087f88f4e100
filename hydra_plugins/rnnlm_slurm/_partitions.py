"""The partitions `sinfo` shows, and a sweep's SLURM request checked against its partition and completed from it.

(Its name starts with `_`, so Hydra's plugin scan leaves it to `hydra_plugins.rnnlm_slurm`, which imports it.)
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("hydra_plugins.rnnlm_slurm")

# partition (`*`: the default one), MaxTime, DefaultTime, then per node: CPUs, memory (MB), generic resources
SINFO_FORMAT = "%P %l %L %c %m %G"
NO_LIMIT_MIN = 1440  # timeout_min where a partition has neither a MaxTime nor a DefaultTime


@dataclass
class Partition:
    default: bool
    max_time: str  # as sinfo shows them
    default_time: str
    nodes: list[tuple[int, int, int]] = field(default_factory=list)  # (CPUs, MB, GPUs) of each kind of its nodes


def _minutes(limit: str) -> float | None:
    """SLURM's time format ([days-]hours:minutes:seconds, minutes, ...) in minutes; None for UNLIMITED or unset."""
    if limit in ("infinite", "UNLIMITED", "NONE", "n/a", ""):
        return None
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if len(parts) == 1:
        parts = [0, parts[0], 0]  # a bare number is minutes
    elif len(parts) == 2:
        parts = [0, *parts]  # minutes:seconds
    hours, minutes, seconds = parts
    return int(days or 0) * 1440 + hours * 60 + minutes + seconds / 60


def _number(text: str) -> int:
    """sinfo's count ("64", or "64+" where a line's nodes differ: at least 64); 0 where there is none."""
    found = re.match(r"\d+", text)
    return int(found.group()) if found else 0


def _gpus(gres: str) -> int:
    """The GPUs in sinfo's gres ("gpu:8", "gpu:a100:4(S:0-1),gpu:v100:2", "(null)")."""
    return sum(int(n) for n in re.findall(r"\bgpu(?::[^:,(\s]+)?:(\d+)", gres))


def partitions() -> dict[str, Partition]:
    """Every partition sinfo shows, with its kinds of node (one sinfo line each); one sentence without sinfo."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", SINFO_FORMAT], capture_output=True, text=True, timeout=60,
                             check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", "") or err
        sys.exit(f"error: hydra/launcher=slurm needs SLURM's sinfo and sbatch here ({str(detail).strip()}): run the "
                 "sweep on a SLURM login node.")  # fmt: skip
    found: dict[str, Partition] = {}
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        name, max_time, default_time, cpus, mem, gres = (line.split() + [""] * 6)[:6]
        part = found.setdefault(name.rstrip("*"), Partition(name.endswith("*"), max_time, default_time))
        kind = (_number(cpus), _number(mem), _gpus(gres))
        if kind[0] > 0 and kind not in part.nodes:
            part.nodes.append(kind)
    return found


def fit_request(params: Mapping[str, Any]) -> dict[str, Any]:
    """The values to fill in for the request's null `timeout_min`, `cpus_per_task` and `mem_gb`: its partition's
    MaxTime, and what every node of it that has the GPUs asked for has (a GPU job: the share of those GPUs),
    said in one log line. A partition SLURM does not have, or a value set over the partition's, is one sentence
    (SystemExit), before anything is submitted: SLURM refuses the first, and the second, where the cluster
    does not enforce partition limits at submission, would stay pending for ever."""
    found = partitions()
    name = params.get("partition")
    if name is None:
        name = next((p for p, part in found.items() if part.default), None)
        if name is None:
            return {}  # no default partition: sbatch says what it wants
    if name not in found:
        sys.exit(f"error: hydra.launcher.partition={name} is not a partition of this SLURM (it has: "
                 f"{', '.join(sorted(found))}): set one of them.")  # fmt: skip
    part, asked = found[name], {k: params.get(k) for k in ("timeout_min", "cpus_per_task", "mem_gb")}
    most = _minutes(part.max_time)
    if most is not None and asked["timeout_min"] is not None and asked["timeout_min"] > most:
        sys.exit(f"error: hydra.launcher.timeout_min={asked['timeout_min']:g} is over partition {name}'s time limit "
                 f"({part.max_time}, {most:g} min): set it to at most {int(most)}.")  # fmt: skip
    gpus, tasks = params.get("gpus_per_node") or 0, max(1, params.get("tasks_per_node") or 1)
    kinds = [k for k in part.nodes if k[2] >= gpus] or part.nodes  # the nodes that can run the job
    if kinds:
        top = max(k[0] for k in kinds)
        if asked["cpus_per_task"] is not None and asked["cpus_per_task"] * tasks > top:
            each = f" (times {tasks} tasks)" if tasks > 1 else ""
            sys.exit(f"error: hydra.launcher.cpus_per_task={asked['cpus_per_task']}{each} is more than any node of "
                     f"partition {name} has ({top} CPUs): set it to at most {max(1, top // tasks)}.")  # fmt: skip
        top = max(k[1] for k in kinds)
        if asked["mem_gb"] is not None and asked["mem_gb"] * 1024 > top:
            sys.exit(f"error: hydra.launcher.mem_gb={asked['mem_gb']} is more than any node of partition {name} has "
                     f"({top} MB): set it to at most {top // 1024}.")  # fmt: skip
    filled, said = {}, []
    if asked["timeout_min"] is None:
        fallback = _minutes(part.default_time)
        if most is not None:
            filled["timeout_min"], why = int(most), "its MaxTime"
        elif fallback is not None:
            filled["timeout_min"], why = int(fallback), "its DefaultTime; it has no MaxTime"
        else:
            filled["timeout_min"], why = NO_LIMIT_MIN, "a day: it has no time limit"
        said.append(f"timeout_min={filled['timeout_min']} ({why})")
    share = [(c * gpus // g, m * gpus // g) if gpus and g else (c, m) for c, m, g in kinds]  # a job's part of a node
    if asked["cpus_per_task"] is None and share:
        filled["cpus_per_task"] = max(1, min(c for c, _ in share) // tasks)
    if asked["mem_gb"] is None and share and min(m for _, m in share) >= 1024:
        filled["mem_gb"] = min(m for _, m in share) // 1024  # --mem=<n>GB: SLURM's GB is 1024 MB
    nodes = [f"{k}={filled[k]}" for k in ("cpus_per_task", "mem_gb") if k in filled]
    if nodes:
        whose = "its nodes'" if len(kinds) == 1 else "its smallest nodes'"
        if gpus and any(g > gpus for _, _, g in kinds):
            of = {g for _, _, g in kinds}
            whose += f" share for {gpus} of their {of.pop()} GPUs" if len(of) == 1 else f" share for {gpus} GPUs"
        said.append(f"{', '.join(nodes)} ({whose})")
    if said:
        log.info("SLURM request for partition %s: %s; set hydra.launcher.<key> to ask for less", name, ", ".join(said))
    return filled
