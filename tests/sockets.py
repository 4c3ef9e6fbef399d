"""
Paths for UNIX sockets in tests.

The kernel takes at most 107 bytes for a socket's path, and a test's own
temporary directory (under the checkout's _trial_temp, wherever CI cloned
it) can be longer than that on its own.
"""

from __future__ import annotations

import os
import shutil
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
