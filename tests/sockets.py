"""
Sockets for tests: short paths for UNIX sockets, and a port that refuses.

The kernel takes at most 107 bytes for a socket's path, and a test's own
temporary directory (under the checkout's _trial_temp, wherever CI cloned
it) can be longer than that on its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from twisted.trial.unittest import SynchronousTestCase


def socket_dir(case: SynchronousTestCase) -> str:
    """
    A new, empty directory with a short absolute path, removed when
    C{case} ends.
    """
    # Not under $TMPDIR, which can be long too.
    path = tempfile.mkdtemp(prefix="pingproto-", dir="/tmp")
    case.addCleanup(shutil.rmtree, path, True)
    return path


def refusing_port(case: SynchronousTestCase) -> int:
    """
    A port on 127.0.0.1 where a connection is refused until C{case} ends.

    The port is bound and not listening, so nothing else can take it
    meanwhile: a well-known port such as 1 is only free by convention.
    """
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    case.addCleanup(held.close)
    held.bind(("127.0.0.1", 0))
    port: int = held.getsockname()[1]
    return port
