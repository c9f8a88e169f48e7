"""Helper processes started as `python -m <module> SOCKET ...`, talking over a socket pair: not
multiprocessing children, since spawn and forkserver re-run the parent's main module, which a
server must not depend on."""

from __future__ import annotations

import socket
import subprocess
import sys
from multiprocessing.connection import Connection


def start_child(
    module: str, *arguments: str, pass_fds: tuple[int, ...] = ()
) -> tuple[subprocess.Popen[bytes], Connection]:
    """Start `python -m module SOCKET *arguments` (SOCKET: its end of a new socket pair, a file
    descriptor number), also passing it `pass_fds`; the process and the parent's end."""
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(theirs.fileno()), *arguments],
            pass_fds=(theirs.fileno(), *pass_fds),
            stdin=subprocess.DEVNULL,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, Connection(ours.detach())
