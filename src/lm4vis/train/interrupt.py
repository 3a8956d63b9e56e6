"""Preemption: SIGTERM and SIGINT stop a run at the next safe point, with a checkpoint.

A cluster scheduler preempts a job with SIGTERM; a person stops one with Ctrl-C (SIGINT).
Either way the run should keep all it has trained and say how to continue. Lightning already
turns SIGTERM into a stop: its handler sets ``trainer.received_sigterm`` and its loops raise
``SIGTERMException`` between batches. `SafeStop` builds on that rather than beside it:

- both signals are routed to Lightning's SIGTERM handler, so Ctrl-C stops the same way
  (a second Ctrl-C stops at once, as usual);
- the hand-over waits for a *safe point*: the end of an optimizer step (never inside gradient
  accumulation) and never inside validation, so the checkpoint is a state the uninterrupted
  run also passed through;
- when the stop lands inside an epoch, ``last.ckpt`` is written there (``on_exception``); the
  data module then skips the batches that epoch already trained on resume, so the resumed run
  repeats the uninterrupted one exactly.

`lm4vis.train.run.train` turns the stop into `RunInterrupted`, whose exit code is the shell's
``128 + signal`` (143 for SIGTERM, 130 for SIGINT). This module is light (no torch, no
Lightning), so the command line can catch the stop without importing them; `SafeStop` lives with
the other Lightning callbacks in `lm4vis.train.callbacks`.
"""

from __future__ import annotations

import signal
from pathlib import Path

#: The signals a run stops on at the next safe point.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(Exception):
    """A run stopped by a signal after saving where it was.

    Attributes:
        signum: the signal (``signal.SIGTERM`` or ``signal.SIGINT``).
        run_dir: the run folder, which ``--resume`` continues.
        epoch: the epoch it stopped in, counted from 1 as the progress output does.
        step: optimizer steps done.
        exit_code: ``128 + signum``, what a shell reports for a process the signal ended.
    """

    def __init__(self, signum: int, run_dir: Path, epoch: int, step: int) -> None:
        self.signum, self.run_dir, self.epoch, self.step = int(signum), Path(run_dir), epoch, step
        super().__init__(self.line())

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    def line(self, resume_command: str | None = None) -> str:
        """The one line a user sees: where it stopped and the command that continues it.

        Args:
            resume_command: the command to name; ``lm4vis train --resume RUN_DIR`` when None
                (a grid names its own command, which resumes it cell by cell).
        """
        if resume_command is None:
            return (f"interrupted at epoch {self.epoch}, step {self.step}; resume with: "
                    f"lm4vis train --resume {self.run_dir}")
        return (f"interrupted at epoch {self.epoch}, step {self.step} of run {self.run_dir}; resume "
                f"with: {resume_command}")


__all__ = ["RunInterrupted", "STOP_SIGNALS"]
