"""Errors raised by pipeline steps."""

from __future__ import annotations


class StepError(Exception):
    """Base of the actors' own errors."""


class StepFailed(StepError):
    """A permanent problem the caller can act on: the ticket fails with this message, no retry."""
