"""`python -m app.worker_child DOWN_FD UP_FD THREADS`: serve's worker child, wired by the app.

The settings arrive first on the down pipe, as JSON; then actors.worker_process runs the child.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

import msgspec

from actors.settings import Settings
from actors.worker_process import child_main
from app.wiring import make_runtime


def main(argv: list[str]) -> None:
    """Read the settings from the pipe and run the worker child until the pipe closes."""
    conn = Connection(int(argv[0]), writable=False)
    reports = Connection(int(argv[1]), readable=False)
    settings = msgspec.json.decode(conn.recv_bytes(), type=Settings)
    child_main(settings, int(argv[2]), conn, reports, make_runtime)


if __name__ == "__main__":
    main(sys.argv[1:])
