"""
Picking up a renewed certificate without dropping anyone.

Certificates are renewed every 60 to 90 days by a tool that rewrites the
files in place.  L{CertificateReloader} notices (a check of the files'
identity at most once a minute, and at once on SIGHUP), checks the new
files exactly as start-up does, and hands them to L{ServerTLS}, which serves
them to new connections; open connections keep the session they have.  A
reload that fails (half-written files, a key that does not match, a key
OpenSSL refuses) keeps the old certificate, says why in one line, and
leaves the periodic check running.  That check also warns, once a day,
while the certificate served is about to expire, and says once when it
has: a renewal that stopped is not found otherwise until clients fail.
"""

from __future__ import annotations

import datetime
import os
import signal
import threading
import time
from typing import Any, Callable, cast

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger

from pingproto._reactor import looping_call, or_global_reactor
from pingproto.tls import ServerTLS
from pingproto.tlsfiles import (
    LAYOUT_FILES,
    TLSConfigError,
    TLSMaterial,
    describe,
    expired_certificate,
    expiry_warnings,
    load_tls_dir,
)

__all__ = ["CHECK_INTERVAL", "EXPIRY_REMINDER", "CertificateReloader"]

CHECK_INTERVAL = 60.0
# Seconds between two warnings from the periodic check that the
# certificate served is about to expire.
EXPIRY_REMINDER = 24 * 3600.0

_log = Logger()


def _signature(directory: str) -> tuple[Any, ...]:
    """
    What changes when any file the directory may hold is rewritten,
    replaced, added or removed: those of every layout, not only the ones
    served (a ca.pem added to a directory served without one).
    """
    parts = []
    for name in LAYOUT_FILES:
        try:
            st = os.stat(os.path.join(directory, name))
        except OSError:
            st = None
        parts.append(None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(parts)


class CertificateReloader(Service):
    """
    Reloads the TLS directory into C{tls} on SIGHUP and when its files
    change.

    @param tls: the TLS layer serving the certificate; it keeps serving
        the old one when a reload fails.
    @param directory: the TLS directory given at start-up.
    @param clock: the reactor (the global one by default); a clock
        (L{IReactorTime}) will do without C{handle_sighup}, which needs one
        that also provides L{IReactorFromThreads}, as every reactor does.
    @param interval: seconds between looks at the files (L{CHECK_INTERVAL});
        a look is a C{stat} of each, so renewals are noticed without SIGHUP.
    @param handle_sighup: install a SIGHUP handler while running (off for
        embedding programs that own their signals).
    @param wall: the time of day in seconds since the epoch, which tells
        whether a certificate is valid yet.
    @param load: reads and checks the directory at a time of day
        (L{load_tls_dir}); a test may stand in for it to change the files
        while they are read.
    """

    def __init__(
        self,
        tls: ServerTLS,
        directory: str,
        *,
        clock: IReactorTime | None = None,
        interval: float = CHECK_INTERVAL,
        handle_sighup: bool = True,
        wall: Callable[[], float] = time.time,
        load: Callable[[str, datetime.datetime], TLSMaterial] = load_tls_dir,
    ) -> None:
        clock = or_global_reactor(clock)
        self.tls = tls
        self.directory = directory
        self.clock = clock
        self.interval = interval
        self.handle_sighup = handle_sighup
        self._wall = wall
        self._load = load
        self._seen = _signature(directory)
        # Why the last reload failed, while the files stay as they were:
        # tried again at every check (a certificate not valid yet becomes
        # valid), and said again only if the reason changes.
        self._failed: str | None = None
        # When the periodic check last warned that the certificate served
        # is about to expire (the clock's seconds), and whether it has said
        # that it expired: a server whose renewal broke says so once a
        # day, not once a minute, and the expiry itself once.
        self._expiry_warned: float | None = None
        self._expired_said = False
        self._checker = looping_call(clock, self.check)
        self._previous_handler: Any = None
        self._handling_sighup = False

    def startService(self) -> None:
        super().startService()
        self._handling_sighup = self.handle_sighup and threading.current_thread() is threading.main_thread()
        if self._handling_sighup:
            self._previous_handler = signal.signal(signal.SIGHUP, self._sighup)
        elif self.handle_sighup:
            # Python gives signals to the main thread's handlers alone.
            _log.warn(
                "Not reloading {directory} on SIGHUP: the reactor runs outside the main thread. "
                "It is still reloaded when its files change, and by reloader.reload().",
                directory=self.directory,
            )
        if expiry_warnings(self.tls.material, self._now()):
            # Start-up has just given them (twistd pingproto logs the
            # material's warnings, as a reload does).
            self._expiry_warned = self.clock.seconds()
        self._checker.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._checker.running:
            self._checker.stop()
        if self._handling_sighup:
            signal.signal(signal.SIGHUP, self._previous_handler or signal.SIG_DFL)
            self._handling_sighup = False

    def _sighup(self, signum: int, frame: object) -> None:
        # Signal handlers run between bytecodes; do the work in the reactor,
        # which the clock is when SIGHUP is handled (see the class).
        cast(IReactorFromThreads, self.clock).callFromThread(self.reload, "SIGHUP")

    def check(self) -> bool:
        """
        Reload if the files changed since they were last looked at; then
        say whether the certificate served is about to expire, or has.
        """
        seen = _signature(self.directory)
        if seen == self._seen:
            reloaded = self._failed is not None and self._reload("a retry of the failed reload", retry=True)
        else:
            self._seen = seen
            self._failed = None
            reloaded = self.reload("the files changed")
        self._check_expiry()
        return reloaded

    def _check_expiry(self) -> None:
        """
        Warn that the certificate served is about to expire, at most once
        every L{EXPIRY_REMINDER}, and say once, as an error, that it has
        expired.  The warning at start-up (or after a reload) is not heard
        again otherwise from a server that runs for months while its
        renewal has silently stopped.
        """
        now = self._now()
        expired = expired_certificate(self.tls.material, now)
        if expired is not None:
            if not self._expired_said:
                _log.error("{text}", text=expired)
                self._expired_said = True
            return
        # Valid again (the clock had stepped outside its dates): its real
        # end is to be said when it comes.
        self._expired_said = False
        warnings = expiry_warnings(self.tls.material, now)
        if not warnings:
            return
        if self._expiry_warned is not None and self.clock.seconds() - self._expiry_warned < EXPIRY_REMINDER:
            return
        self._expiry_warned = self.clock.seconds()
        for warning in warnings:
            _log.warn("{text}", text=warning)

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._wall(), datetime.timezone.utc)

    def reload(self, why: str = "asked") -> bool:
        """
        Load and check the directory; serve it if it is good.

        @param why: what asked for the reload, for the log line.
        @return: whether the certificate was replaced.
        """
        return self._reload(why, retry=False)

    def _reload(self, why: str, retry: bool) -> bool:
        """
        L{reload}; a C{retry} of files that failed and have not changed
        says their failure again only if it is another.
        """
        now = self._now()
        # Taken before the files are read, as check() takes it: files
        # rewritten while they are read are then a change the next check
        # finds.  Taken after, it was the new files', and they were never
        # loaded while the older ones stayed served.
        seen = _signature(self.directory)
        try:
            material = self._load(self.directory, now)
            self._seen = seen
            self._failed = None
            if (material.certificate, material.chain) == (self.tls.material.certificate, self.tls.material.chain):
                _log.info("TLS reload ({why}): the certificate is unchanged", why=why)
                return False
            # OpenSSL may refuse what load_tls_dir accepted (its security
            # level); raised out of the periodic check, that would end it.
            self.tls.replace(material)
        except TLSConfigError as e:
            if not retry or str(e) != self._failed:
                _log.error(
                    "TLS reload ({why}) failed, still serving the current certificate: {problem}",
                    why=why,
                    problem=str(e),
                )
            self._failed = str(e)
            return False
        _log.info(
            "TLS reload ({why}): now serving the certificate {certificate}",
            why=why,
            certificate=describe(material.certificate),
        )
        for warning in material.warnings:
            _log.warn("{text}", text=warning)
        self._expiry_warned = self.clock.seconds() if expiry_warnings(material, now) else None
        self._expired_said = False
        return True
