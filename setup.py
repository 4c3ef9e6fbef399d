"""
Packaging for pingproto.

The dropin ``twisted/plugins/pingproto_plugin.py`` is listed explicitly:
``twisted/plugins`` must not be a package of ours (no ``__init__.py``), so
setuptools would not find it by itself, and without it ``twistd pingproto``
does not exist after an ordinary ``pip install .``.
"""

from setuptools import setup

setup(
    name="pingproto",
    version="0.1.0",
    description="A WebSocket latency probe: a TLS echo server, a client and a page",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=["pingproto", "twisted.plugins"],
    package_data={
        "twisted.plugins": ["pingproto_plugin.py"],
        # py.typed: the type hints are for programs that embed pingproto
        # too (PEP 561), not only for its own check.
        "pingproto": ["web/*.html", "py.typed"],
    },
    entry_points={"console_scripts": ["pingproto = pingproto.cli:entry_point"]},
    include_package_data=False,
    install_requires=[
        # The oldest versions the test suite passes with (tools/oldest.txt,
        # which tools/test runs it against).  Before 26.10, twistd exits
        # with status 0 after refusing a bad option.
        "twisted[tls]>=26.10.0",
        "autobahn>=24.4.2",
        # Bindings that can restrict the key exchange groups
        # (pingproto/tls.py), and the first pyOpenSSL that allows them.
        "pyopenssl>=26.1.0",
        "service-identity>=24.1.0",
        "cryptography>=47.0.0",
    ],
    extras_require={
        # Plotting for `pingproto report -o FILE.png|.svg`.
        "plot": ["matplotlib>=3.7"],
        "test": [
            # issue_cert(not_before=, not_after=) for the expiry tests.
            "trustme>=1.2.0",
            "hypothesis>=6.100",
            # A TLS 1.3 client that sends key updates (tests/keyupdate_client.py).
            "tlslite-ng>=0.8.2",
            "matplotlib>=3.7",
            # Drives Debian's chromium; never downloads a browser.
            "playwright>=1.40",
            # The type check (mypy.ini); the plugin reads zope.interface's
            # declarations.  The versions the package was first checked with.
            "mypy>=2.4.1",
            "mypy-zope>=1.0.17",
        ],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
    ],
)
