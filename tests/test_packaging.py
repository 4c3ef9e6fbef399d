"""
The minimum versions setup.py pins are the ones tools/test runs the suite
against (tools/oldest.txt): a minimum nobody ran would be a guess.
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import SynchronousTestCase

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*path: str) -> str:
    with open(os.path.join(_ROOT, *path), encoding="utf-8") as f:
        return f.read()


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def setup_minimums() -> dict[str, str]:
    """
    Each requirement's C{>=} version, as setup.py writes them.
    """
    return {_key(name): version for name, version in re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?>=([^",;]+)"', _read("setup.py"))}


def oldest_pins() -> dict[str, str]:
    """
    Each C{==} pin of tools/oldest.txt.
    """
    pins = {}
    for line in _read("tools", "oldest.txt").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_key(name)] = version.strip()
    return pins


class OldestVersionsTests(SynchronousTestCase):
    def test_pinsAreTheMinimums(self) -> None:
        """
        Every version tools/oldest.txt pins is the minimum setup.py gives
        that package, and every package whose minimum is load-bearing (the
        runtime ones, and trustme, whose older releases lack what the tests
        call) is pinned there.
        """
        minimums, pins = setup_minimums(), oldest_pins()
        for name, version in pins.items():
            self.assertEqual(minimums.get(name), version, name)
        for name in ("twisted", "autobahn", "pyopenssl", "cryptography", "service-identity", "trustme"):
            self.assertIn(name, pins)
