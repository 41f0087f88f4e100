"""The signal handlers and the watcher thread that make Ctrl-C and SIGTERM end a run in bounded time.

While training, both signals only raise a flag, which GracefulInterrupt (rnnlm/training/callbacks/interrupt.py)
turns into a checkpoint at a step every rank agrees on. Outside training (reading data, testing) there is
nothing to save: the signal stops the run at once.

Under submitit (`hydra/launcher=slurm`), SLURM sends its pre-emption signal (USR2) `signal_delay_s` before the
time limit and submitit's handler requeues the job at once, losing the epoch in progress. The guard takes that
signal over while training: the flag again, then the checkpoint, and only then submitit's handler (`hand_over`),
so the requeued job, which runs in the same folder, resumes from that very step.

A process blocked inside C++ (a collective waiting for a rank that hung, a data loader) never returns to
the interpreter, so no Python signal handler runs. Python's C-level handler still writes the signal
number to a "wakeup" pipe; a watcher thread reads it, passes SIGTERM on to the rank processes this one
started, and, if the process is still alive `grace_s` seconds later (or at a second Ctrl-C), removes any
half-written file, ends those ranks and the data-loader workers and exits with 128 + the signal number.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L

from rnnlm.files import remove_unfinished
from rnnlm.lifecycle.checkpoint_io import what_is_kept
from rnnlm.lightning_api import launched_processes

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def preempt_signal() -> int:
    """The signal submitit asks SLURM to send before the time limit (its SUBMITIT_PREEMPT_SIGNAL, USR2)."""
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), signal.SIGUSR2)


class Stopped(SystemExit):
    """A signal outside training: nothing to save, the run ends with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)


def _name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def signal_launched_ranks(trainer: L.Trainer | None, signum: int) -> None:
    """Send `signum` to the rank processes Lightning started from this process (none elsewhere)."""
    for proc in launched_processes(trainer):
        try:
            os.kill(proc.pid, signum)
        except (ProcessLookupError, TypeError):
            pass


def _where(thread: threading.Thread) -> str:
    """The innermost Python frame of `thread`: where a stuck main thread waits (C++ below it)."""
    frame = sys._current_frames().get(thread.ident)
    if frame is None:
        return "an unknown place"
    return f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"


_active: StopGuard | None = None  # the guard of this process, if one is started


def _forget_in_forked_child() -> None:
    """A forked child (a data-loader worker) inherits the handlers and the wakeup pipe but not the watcher:
    the terminal's Ctrl-C would reach the worker too and write into the parent's pipe a second Ctrl-C,
    which quits at once. Children take their signals as before the guard."""
    guard = _active
    if guard is None:
        return
    try:
        signal.set_wakeup_fd(-1)
        for signum, handler in guard._previous.items():
            signal.signal(signum, handler)
    except ValueError:  # forked from a thread other than the main one: no handlers to give back there
        pass


os.register_at_fork(after_in_child=_forget_in_forked_child)


class StopGuard:
    """The signal handlers and the watcher thread of one process; `graceful` is on while training."""

    def __init__(self, grace_s: float = 30.0) -> None:
        self.grace_s = grace_s
        self.graceful = False
        self.signum: int | None = None
        self.trainer: L.Trainer | None = None  # for the ranks it started and the checkpoint it keeps
        self._pid: int | None = None  # the process in which the guard is active
        self._previous: dict[int, Any] = {}
        self.preempt = preempt_signal()
        self.requeue: Any = None  # the pre-emption handler found installed (submitit's), called after the checkpoint
        self.preempted = False

    def __getstate__(self) -> dict[str, Any]:  # ddp_spawn pickles the callbacks: each process starts its own
        return {"grace_s": self.grace_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["grace_s"])

    @property
    def active(self) -> bool:
        return self._pid == os.getpid()

    def start(self) -> StopGuard:
        if self.active or threading.current_thread() is not threading.main_thread():
            return self  # signals reach only the main thread: elsewhere (a test runner's worker) do nothing
        self._pid, self.signum, self.graceful, self.preempted = os.getpid(), None, False, False
        self._read, write = os.pipe()
        os.set_blocking(write, False)
        self._write = write
        self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        found = signal.getsignal(self.preempt)
        self.requeue = found if callable(found) else None  # SIG_DFL / SIG_IGN: nobody requeues, leave it be
        if self.requeue is not None:
            self._previous[self.preempt] = signal.signal(self.preempt, self._handle_preempt)
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="rnnlm-stop-watcher", daemon=True)
        self._thread.start()
        global _active
        _active = self
        return self

    def stop(self) -> None:
        if not self.active:
            return
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        os.close(self._write)  # the watcher reads end-of-file and returns
        self._thread.join(timeout=5)
        os.close(self._read)
        self._pid = None
        global _active
        _active = None

    def __enter__(self) -> StopGuard:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reinstall(self) -> None:
        """Take SIGINT/SIGTERM back from Lightning, whose SIGTERM handler runs a collective broadcast inside
        the handler (a deadlock when one rank alone is signalled); its teardown gives them back to us."""
        if self.active:
            for signum in STOP_SIGNALS:
                signal.signal(signum, self._handle)
            if self.requeue is not None:
                signal.signal(self.preempt, self._handle_preempt)

    def hand_over(self) -> None:
        """Let the pre-emption handler this guard displaced (submitit's: requeue the job, then exit) act now."""
        if self.requeue is not None:
            self.requeue(self.preempt, None)

    # -- in the main thread, when it is free to run Python ------------------------------------------------
    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            return  # a second signal: the watcher acts on it (a second Ctrl-C quits at once)
        self.signum = signum
        if self.graceful:
            print(f"\n{_name(signum)}: finishing this batch, then saving a checkpoint to resume from "
                  f"(Ctrl-C again quits at once)", file=sys.stderr, flush=True)  # fmt: skip
            return
        print(f"\n{_name(signum)}: stopping (no training step in progress, nothing to save)", file=sys.stderr,
              flush=True)  # fmt: skip
        raise Stopped(signum)

    def _handle_preempt(self, signum: int, frame) -> None:
        if not self.graceful:
            self.hand_over()  # not training: nothing newer to save since the last checkpoint; requeue now
            return
        self.preempted = True  # train() hands over once the checkpoint is saved, whichever signal came first
        if self.signum is None:
            self.signum = signum
            print(f"\n{_name(signum)}: the job's time limit is near (or it is pre-empted): finishing this batch, "
                  "saving a checkpoint, then requeueing", file=sys.stderr, flush=True)  # fmt: skip

    # -- in the watcher thread, which runs even while the main thread is blocked in C++ -------------------
    def _watch(self) -> None:
        first, deadline = None, None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._read], [], [], timeout)[0]:
                self._exit_now(first, f"the run did not stop within {self.grace_s:g} s of {_name(first)}")
            data = os.read(self._read, 64)
            if not data:
                return
            for signum in data:
                if signum not in STOP_SIGNALS:
                    continue
                if first is None:
                    first, deadline = signum, time.monotonic() + self.grace_s
                    if signum == signal.SIGTERM:  # Ctrl-C in a terminal reaches every rank already
                        signal_launched_ranks(self.trainer, signum)
                elif signum == signal.SIGINT:
                    self._exit_now(signum, "Ctrl-C again")

    def _exit_now(self, signum: int, why: str) -> None:
        where = _where(threading.main_thread())
        message = (
            f"\nerror: {why}: exiting now without saving (it was waiting in {where}); {what_is_kept(self.trainer)}.\n"
        )
        os.write(2, message.encode())  # not print(): the blocked main thread may hold sys.stderr's lock
        remove_unfinished()
        signal_launched_ranks(self.trainer, signal.SIGKILL)
        for child in multiprocessing.active_children():  # data-loader workers, which may be the stuck ones
            os.kill(child.pid, signal.SIGKILL)
        os._exit(128 + signum)
