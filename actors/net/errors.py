"""Errors of the network layer: one base, each message a sentence a caller can act on."""

from __future__ import annotations


class NetError(Exception):
    """Base of every network-layer error; str(exc) is safe to show a caller (no secrets)."""

    transient: bool = False


class DownloadError(NetError):
    """Fetching a source failed; `transient` says whether retrying later may succeed."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class UnsafeTarget(DownloadError):
    """A URL refused by the SSRF guard or by syntax checks; never transient.

    It subclasses DownloadError so one `except DownloadError` in a caller also covers a
    refused source or redirect hop, with `transient` False as retrying cannot help.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)
