"""When one rank of a DDP run fails, the whole run ends, in one sentence where it can: a collective that
timed out or lost its peer, a rank that stopped on a signal (ddp_spawn reports it only as an exit code),
and the rank processes Lightning started, which it would otherwise leave running."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from rnnlm.errors import UserError
from rnnlm.lifecycle.checkpoint_io import what_is_kept
from rnnlm.lifecycle.interrupt import interrupted_from_checkpoint
from rnnlm.lifecycle.stop_guard import signal_launched_ranks

# What torch's collectives raise when the other side hung (gloo's timeout, NCCL's watchdog) or went away.
_TIMED_OUT = re.compile(r"Timed out waiting (\d+)ms|collective operation timeout|Watchdog caught", re.I)
_PEER_GONE = re.compile(r"Connection (closed|reset) by peer|Broken pipe|communicator was aborted|Socket Timeout", re.I)


def collective_failure(err: BaseException, trainer) -> UserError | None:
    """One sentence for a collective that failed because another rank hung or ended, else None."""
    text = str(err)
    timed_out, gone = _TIMED_OUT.search(text), _PEER_GONE.search(text)
    if not (timed_out or gone) or not isinstance(err, RuntimeError):
        return None
    who = f"rank {trainer.global_rank} of {trainer.world_size}"
    kept = what_is_kept(trainer)
    if timed_out:
        ms = timed_out.group(1)
        after = f" after {int(ms) / 1000:g} s" if ms else ""
        return UserError(
            f"{who}: a collective (gradient or metric sum across the DDP processes) timed out{after}: another "
            f"process hung or stopped (its own output says why); {kept}; raise trainer.strategy.timeout_s only if "
            "the ranks are legitimately that slow."
        )
    return UserError(
        f"{who}: another DDP process ended while this one waited for it in a collective (its own output says "
        f"why); {kept}."
    )


@contextmanager
def ranks_end_together(trainer) -> Iterator[None]:
    """Around fit and test: a failure in one process ends the whole run, in one sentence where it can."""
    try:
        yield
    except SystemExit:
        raise  # a signal's graceful stop: every rank stops at the same step by itself
    except BaseException as err:
        # Lightning ends the ranks it started only on Ctrl-C: after any other failure a rank stuck waiting
        # would outlive the run.
        signal_launched_ranks(trainer, signal.SIGKILL)
        failure = collective_failure(err, trainer) or _from_spawned(err, trainer)
        if failure is not None:
            raise failure from None if isinstance(failure, SystemExit) else err
        raise


def _from_spawned(err: BaseException, trainer) -> BaseException | None:
    """ddp_spawn: what a spawned rank raised reaches this process as the text of its traceback."""
    from torch.multiprocessing import ProcessExitedException, ProcessRaisedException

    if isinstance(err, ProcessRaisedException):
        message = err.msg.strip().splitlines()[-1] if err.msg.strip() else ""
        prefix = f"{UserError.__module__}.{UserError.__name__}: "
        if message.startswith(prefix):
            return UserError(message[len(prefix) :])
        return collective_failure(RuntimeError(err.msg), trainer)
    if isinstance(err, ProcessExitedException) and err.exit_code - 128 in (signal.SIGINT, signal.SIGTERM):
        return interrupted_from_checkpoint(err.exit_code - 128, trainer)
    return None
