"""Exceptions raised by dfn4core: every library failure is a Dfn4Error subclass."""

from __future__ import annotations

from pathlib import Path


class Dfn4Error(Exception):
    """Base class of every error dfn4core raises on purpose."""


class ConfigError(Dfn4Error):
    """A configuration value or file is invalid."""


class AudioError(Dfn4Error):
    """Audio could not be read, written or processed.

    Args:
        path: the file concerned, or None for in-memory audio.
        reason: one line saying what is wrong.
    """

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path is not None else reason)


class CheckpointError(Dfn4Error):
    """A checkpoint file is missing, corrupt or not a dfn4 checkpoint."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class TrainingInterrupted(Dfn4Error):
    """A training run stopped on request (Ctrl-C, SIGTERM) after checkpointing its current step.

    Args:
        step: the step the run stopped at.
        checkpoint: the checkpoint it resumes from.
    """

    def __init__(self, step: int, checkpoint: str | Path):
        self.step = step
        self.checkpoint = Path(checkpoint)
        super().__init__(f"interrupted at step {step}; the run resumes from {checkpoint}")
