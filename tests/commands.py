"""
Running the project's commands from this source tree, as the tests, the
soak script and the benchmarks do: the code under test, not an older
installed copy.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def twistd() -> str:
    """
    The C{twistd} script of the Python running this.
    """
    for directory in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        path = os.path.join(directory, "twistd")
        if os.path.exists(path):
            return path
    found = shutil.which("twistd")
    if found:
        return found
    raise FileNotFoundError("twistd is not installed beside this Python (pip install .)")


def environment() -> dict[str, str]:
    """
    This environment with the source tree first on C{PYTHONPATH}, so that
    its package and its twistd dropin are the ones that run, and without
    C{PYTHONUNBUFFERED}.
    """
    env = dict(os.environ)
    # Users' Python buffers standard output and error, and only then can
    # a failed write surface again at exit: test what they run.
    env.pop("PYTHONUNBUFFERED", None)
    env["PYTHONPATH"] = os.pathsep.join([SOURCE, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env
