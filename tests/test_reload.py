"""
Certificate renewal while clients are connected: a real server on
loopback, two certificates, a client that stays connected and a new client
that sees the new certificate.
"""

from __future__ import annotations

import datetime
import os
import signal
import threading
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
import trustme
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from pingproto import PingMonitor
from pingproto.reload import CHECK_INTERVAL, CertificateReloader
from pingproto.tls import ServerTLS, client_tls_options
from pingproto.tlsfiles import TLSMaterial, load_tls_dir

from .test_endtoend import ServerTestCase
from .test_tlsfiles import self_signed_dir
from .tlsdir import write_tls_dir
from .waiting import Conditions, Watcher


class PeerCertificate(Protocol):
    """
    Connects, completes the TLS handshake, and reports the server's
    certificate serial number.
    """

    def __init__(self) -> None:
        self.serial: Deferred[int] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")

    def dataReceived(self, data: bytes) -> None:
        if not self.serial.called:
            cert = self.transport.getPeerCertificate()
            self.serial.callback(cert.get_serial_number())
            self.transport.loseConnection()


class RenewalTests(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.tlsdir = self.service.reloader.directory
        self.events: list[str] = []
        self.logged = Conditions()

        def observer(event: dict) -> None:
            self.events.append(formatEvent(event))
            self.logged.check()

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def served_serial(self) -> Deferred[int]:
        endpoint = wrapClientTLS(
            client_tls_options("localhost", self.caFile), TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        )
        protocol = PeerCertificate()
        return connectProtocol(endpoint, protocol).addCallback(lambda _: protocol.serial)

    def serial_on_disk(self) -> int:
        return load_tls_dir(self.tlsdir).certificate.serial_number

    @inlineCallbacks
    def test_renewalKeepsOpenConnections(self):  # type: ignore[no-untyped-def]
        """
        After the files are renewed and reloaded, a client connected before
        keeps getting echoes on its connection, and a new client is served
        the new certificate.
        """
        old = self.serial_on_disk()
        self.assertEqual((yield self.served_serial()), old)
        recorder = Watcher()
        monitor = PingMonitor(self.url(), recorder, interval=0.02, ca_file=self.caFile)
        monitor.startService()
        self.addCleanup(monitor.stopService)
        yield recorder.when(lambda result: len(result.samples) >= 2)

        write_tls_dir(self.tlsdir, self.ca)
        new = self.serial_on_disk()
        self.assertNotEqual(new, old)
        self.assertTrue(self.service.reloader.check())

        self.assertEqual((yield self.served_serial()), new)
        before = len(recorder.result.samples)
        yield recorder.when(lambda result: len(result.samples) >= before + 3)
        opens = [c for c in recorder.result.states if c.state.name == "OPEN"]
        self.assertEqual(len(opens), 1, "the old connection was never dropped")
        self.assertTrue(any("now serving the certificate " in e for e in self.events))

    @inlineCallbacks
    def test_sighup(self):  # type: ignore[no-untyped-def]
        """
        SIGHUP reloads at once.
        """
        write_tls_dir(self.tlsdir, self.ca)
        os.kill(os.getpid(), signal.SIGHUP)
        yield self.logged.until(lambda: any("TLS reload (SIGHUP)" in e for e in self.events))
        self.assertEqual((yield self.served_serial()), self.serial_on_disk())

    @inlineCallbacks
    def test_badRenewalKeepsOldCertificate(self):  # type: ignore[no-untyped-def]
        """
        Half-written files are refused with one line, and the old
        certificate is still served.
        """
        old = self.serial_on_disk()
        with open(os.path.join(self.tlsdir, "tls.cert"), "r+b") as f:
            data = f.read()
            f.seek(0)
            f.truncate()
            f.write(data[: len(data) // 2])
        self.assertFalse(self.service.reloader.check())
        failures = [e for e in self.events if "TLS reload" in e and "failed" in e]
        self.assertEqual(len(failures), 1)
        self.assertIn("still serving the current certificate", failures[0])
        self.assertNotIn("\n", failures[0])
        self.assertEqual((yield self.served_serial()), old)


DAY = 86400.0


class PeriodicCheckTests(SynchronousTestCase):
    def reloading(self, **options: Any) -> tuple[str, trustme.CA, ServerTLS, Clock]:
        """
        A TLS directory served and checked once a minute on a clock, by
        C{self.reloader}, made with C{options} besides.
        """
        tlsdir = self.mktemp()
        ca = write_tls_dir(tlsdir)
        tls = ServerTLS(load_tls_dir(tlsdir))
        clock = Clock()
        # The time of day as the clock runs, from now.
        start = time.time()
        self.reloader = reloader = CertificateReloader(
            tls, tlsdir, clock=clock, handle_sighup=False, wall=lambda: start + clock.seconds(), **options
        )
        reloader.startService()
        self.addCleanup(reloader.stopService)
        return tlsdir, ca, tls, clock

    def expiring(
        self, days: float, not_before: float | None = None
    ) -> tuple[str, trustme.CA, Clock, CertificateReloader, float, list[float]]:
        """
        A TLS directory whose certificate expires C{days} from now (and is
        valid from C{not_before} seconds from now, if given), and a
        reloader for it on a clock, not started: the wall clock runs with
        the clock, from a whole second, plus the returned offset.
        """
        tlsdir = self.mktemp()
        start = float(int(time.time()))

        def at(seconds: float) -> datetime.datetime:
            return datetime.datetime.fromtimestamp(start + seconds, datetime.timezone.utc)

        ca = write_tls_dir(
            tlsdir, not_before=None if not_before is None else at(not_before), not_after=at(days * DAY)
        )
        clock = Clock()
        offset = [0.0]
        reloader = CertificateReloader(
            ServerTLS(load_tls_dir(tlsdir)), tlsdir, clock=clock, handle_sighup=False,
            wall=lambda: start + clock.seconds() + offset[0],
        )
        return tlsdir, ca, clock, reloader, start, offset

    def test_checksOncePerInterval(self) -> None:
        """
        The files are looked at once a minute on the clock, and a change
        found then is loaded.
        """
        tlsdir, ca, tls, clock = self.reloading()
        old = tls.material.certificate
        write_tls_dir(tlsdir, ca)
        clock.advance(59.9)
        self.assertIs(tls.material.certificate, old)
        clock.advance(0.1)
        self.assertEqual(tls.material.certificate, load_tls_dir(tlsdir).certificate)
        self.assertNotEqual(tls.material.certificate, old)

    def test_reloadSaysWhichCertificate(self) -> None:
        """
        The line saying a reload serves a certificate names it and gives
        when it is valid from, which tells one renewal from the one before;
        it gave only the end of its validity, which a renewal issued the
        same day as another would share.
        """
        tlsdir, ca, tls, clock = self.reloading()
        since = datetime.datetime(2024, 5, 6, 7, 8, tzinfo=datetime.timezone.utc)
        until = datetime.datetime(2999, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)
        write_tls_dir(tlsdir, ca, not_before=since, not_after=until)
        with capturedLogs() as events:
            self.assertTrue(self.reloader.reload("SIGHUP"))
        # trustme's certificate has no common name: named by its first
        # subject alternative name.
        self.assertEqual(
            [formatEvent(e) for e in events],
            ["TLS reload (SIGHUP): now serving the certificate 'localhost', valid from 2024-05-06 07:08 "
             "to 2999-01-02 03:04 UTC"],
        )

    def test_filesRewrittenWhileLoadedAreLoadedNext(self) -> None:
        """
        Files rewritten while a reload reads them (a renewal landing in the
        middle) are a change the next check finds and loads: the files'
        signature was taken after the reading, so the check saw the new
        files as seen, and the ones read before them stayed served.
        """
        renewals: list[str] = []

        def load(directory: str, now: datetime.datetime) -> TLSMaterial:
            material = load_tls_dir(directory, now)
            if not renewals:
                # Another renewal lands just after these files were read:
                # with an intermediate, ca.pem grows, a change however
                # coarse the file system's times.
                renewals.append(directory)
                write_tls_dir(directory, ca, intermediate=True)
            return material

        tlsdir, ca, tls, clock = self.reloading(load=load)
        write_tls_dir(tlsdir, ca)
        first = load_tls_dir(tlsdir).certificate
        self.assertTrue(self.reloader.reload("SIGHUP"))
        self.assertEqual(renewals, [tlsdir])
        self.assertEqual(tls.material.certificate, first)
        clock.advance(CHECK_INTERVAL)
        self.assertEqual(tls.material.certificate, load_tls_dir(tlsdir).certificate)
        self.assertEqual(len(tls.material.chain), 2)

    def test_expiryWarnedDailyThenExpiredOnce(self) -> None:
        """
        A certificate served while its renewal has stopped is warned about
        by the periodic check once it has less than 14 days left, then
        once a day (on the clock), not once a minute; its expiry is said
        once, as an error.  Only start-up and a reload warned, so a
        server up for months said nothing before clients failed.
        """
        tlsdir, _, clock, reloader, start, _ = self.expiring(15)
        expiry = datetime.datetime.fromtimestamp(start + 15 * DAY, datetime.timezone.utc)
        # What was said, when, on the clock.
        said = []
        with capturedLogs() as events:
            reloader.startService()
            self.addCleanup(reloader.stopService)
            while clock.seconds() < 17 * DAY:
                clock.advance(CHECK_INTERVAL)
                said += [(clock.seconds(), e["log_level"], formatEvent(e)) for e in events]
                del events[:]
        warnings = [(when, text) for when, level, text in said if level == LogLevel.warn]
        # 14 days left at one day: the first check after it warns.
        self.assertEqual([when for when, _ in warnings], [DAY + CHECK_INTERVAL + n * DAY for n in range(14)])
        self.assertIn("certificate 'localhost' in ", warnings[0][1])
        self.assertIn("expires in 13 days 23 hours, on", warnings[0][1])
        self.assertIn("renew it", warnings[0][1])
        errors = [(when, text) for when, level, text in said if level == LogLevel.error]
        self.assertEqual(
            errors,
            [(15 * DAY, f"the certificate served expired on {expiry:%Y-%m-%d %H:%M} UTC (certificate "
              f"'localhost' in {os.path.join(tlsdir, 'tls.cert')}): "
              "clients refuse it until it is renewed")],
        )
        self.assertEqual(len(said), 15)

    def test_expiredSaidAfterTheClockStepped(self) -> None:
        """
        A wall clock stepped back before the certificate's start, for a
        while, is said (the certificate is not valid yet, to clients
        too); once it is right again, the certificate's real expiry is
        said when it comes, not taken as said already.
        """
        _, _, clock, reloader, start, offset = self.expiring(20, not_before=-3600)
        expiry = datetime.datetime.fromtimestamp(start + 20 * DAY, datetime.timezone.utc)
        errors = []
        with capturedLogs() as events:
            reloader.startService()
            self.addCleanup(reloader.stopService)
            offset[0] = -7200.0
            clock.advance(CHECK_INTERVAL)
            offset[0] = 0.0
            while clock.seconds() < 21 * DAY:
                clock.advance(CHECK_INTERVAL)
            errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 2, errors)
        self.assertIn("is not valid until", errors[0])
        self.assertIn(f"expired on {expiry:%Y-%m-%d %H:%M} UTC", errors[1])

    def test_expiryWarningCountsFromTheLastOne(self) -> None:
        """
        The day between two expiry warnings counts from the last one given,
        at start-up or after a reload: not a warning a minute after either,
        saying again what was just said.
        """
        tlsdir, ca, clock, reloader, start, _ = self.expiring(10)
        said = []
        with capturedLogs() as events:
            reloader.startService()
            self.addCleanup(reloader.stopService)
            while clock.seconds() < 2 * DAY:
                clock.advance(CHECK_INTERVAL)
                if clock.seconds() == DAY / 2:
                    # A renewal still short of 14 days, loaded on SIGHUP.
                    write_tls_dir(
                        tlsdir, ca, not_after=datetime.datetime.fromtimestamp(start + 12 * DAY, datetime.timezone.utc)
                    )
                    self.assertTrue(reloader.reload("SIGHUP"))
                said += [(clock.seconds(), formatEvent(e)) for e in events if e["log_level"] == LogLevel.warn]
                del events[:]
        self.assertEqual([when for when, _ in said], [DAY / 2, DAY / 2 + DAY])
        self.assertIn("expires in 11 days 12 hours, on", said[0][1])
        self.assertIn("expires in 10 days 12 hours, on", said[1][1])

    def test_refusedKeyKeepsChecking(self) -> None:
        """
        Files renewed with a key that cannot be served (1024-bit RSA, which
        OpenSSL refuses) are refused with the one-line reload failure, the
        current certificate stays, and the periodic check goes on: the
        next good renewal is loaded a minute later.
        """
        tlsdir, ca, tls, clock = self.reloading()
        old = tls.material.certificate
        os.remove(os.path.join(tlsdir, "ca.pem"))
        self_signed_dir(tlsdir, rsa.generate_private_key(65537, 1024))
        with capturedLogs() as events:
            clock.advance(CHECK_INTERVAL)
        errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1, errors)
        self.assertTrue(
            errors[0].startswith("TLS reload (the files changed) failed, still serving the current certificate: ")
        )
        self.assertIn("1024-bit RSA key", errors[0])
        self.assertNotIn("\n", errors[0])
        self.assertIs(tls.material.certificate, old)
        write_tls_dir(tlsdir, ca)
        clock.advance(CHECK_INTERVAL)
        self.assertEqual(tls.material.certificate, load_tls_dir(tlsdir).certificate)
        self.assertNotEqual(tls.material.certificate, old)

    def test_addedChainFileNoticed(self) -> None:
        """
        A ca.pem added to a directory served without one (the
        intermediate first forgotten) is a change the check notices: the
        next check serves the chain.
        """
        tlsdir, ca, tls, clock = self.reloading()
        root = trustme.CA()
        leaf = root.create_child_ca().issue_cert("localhost")
        leaf.private_key_pem.write_to_path(os.path.join(tlsdir, "tls.key"))
        leaf.cert_chain_pems[0].write_to_path(os.path.join(tlsdir, "tls.cert"))
        os.remove(os.path.join(tlsdir, "ca.pem"))
        self.assertTrue(self.reloader.reload("asked"))
        self.assertEqual(len(tls.material.chain), 0)
        leaf.cert_chain_pems[1].write_to_path(os.path.join(tlsdir, "ca.pem"))
        clock.advance(CHECK_INTERVAL)
        self.assertEqual(len(tls.material.chain), 1)

    def test_notYetValidRetried(self) -> None:
        """
        A renewal not valid yet when it is found (the CA's clock ahead of
        this one) is refused, said once, tried again at every check while
        the files stay, and served at the first check once it is valid.
        """
        tlsdir, ca, tls, clock = self.reloading()
        old = tls.material.certificate
        valid_from = datetime.datetime.fromtimestamp(self.reloader._wall() + 90, datetime.timezone.utc)
        write_tls_dir(tlsdir, ca, not_before=valid_from)
        with capturedLogs() as events:
            clock.advance(CHECK_INTERVAL)
            self.assertIs(tls.material.certificate, old)
            clock.advance(CHECK_INTERVAL)
        errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("is not valid until", errors[0])
        self.assertNotEqual(tls.material.certificate, old)
        self.assertEqual(tls.material.certificate, load_tls_dir(tlsdir, valid_from).certificate)

    def test_retryFindingTheSameCertificateEnds(self) -> None:
        """
        A retry that finds the files good, and the certificate the one
        served, ends the retrying: one line saying it is unchanged, not one
        at every check after.
        """
        tlsdir = self.mktemp()
        now = time.time()
        write_tls_dir(tlsdir, not_before=datetime.datetime.fromtimestamp(now - 86400, datetime.timezone.utc))
        tls = ServerTLS(load_tls_dir(tlsdir))
        clock = Clock()
        # Two days ago, the certificate was not valid yet.
        wall = [now - 2 * 86400]
        reloader = CertificateReloader(tls, tlsdir, clock=clock, handle_sighup=False, wall=lambda: wall[0])
        reloader.startService()
        self.addCleanup(reloader.stopService)
        with capturedLogs():
            self.assertFalse(reloader.reload("SIGHUP"))
        wall[0] = now
        with capturedLogs() as events:
            for _ in range(3):
                clock.advance(CHECK_INTERVAL)
        self.assertEqual(
            [formatEvent(e) for e in events],
            ["TLS reload (a retry of the failed reload): the certificate is unchanged"],
        )

    def test_badRenewalReportedOnce(self) -> None:
        """
        Half-written files are reported once, when they are found, not
        again at every later check while they stay as they are: one error
        line over five minutes, and the current certificate still served.
        """
        tlsdir, ca, tls, clock = self.reloading()
        old = tls.material.certificate
        with open(os.path.join(tlsdir, "tls.cert"), "r+b") as f:
            data = f.read()
            f.seek(0)
            f.truncate()
            f.write(data[: len(data) // 2])
        with capturedLogs() as events:
            for _ in range(5):
                clock.advance(CHECK_INTERVAL)
        errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1, errors)
        self.assertIs(tls.material.certificate, old)

    def test_specialFilesRefused(self) -> None:
        """
        A FIFO, then a link to /dev/zero, put in place of ca.pem while the
        server runs are each refused at the next check with the one-line
        reload failure naming the file, and the current certificate stays:
        the check froze the reactor (waiting on the FIFO, or reading
        /dev/zero until the memory ran out).  A good renewal after them
        is loaded.
        """
        tlsdir, ca, tls, clock = self.reloading()
        old = tls.material.certificate
        chain = os.path.join(tlsdir, "ca.pem")
        for replace, kind in ((os.mkfifo, "a FIFO"), (lambda path: os.symlink("/dev/zero", path), "a character device")):
            os.remove(chain)
            replace(chain)
            with capturedLogs() as events:
                clock.advance(CHECK_INTERVAL)
            errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
            self.assertEqual(
                errors,
                [
                    "TLS reload (the files changed) failed, still serving the current certificate: "
                    f"cannot read {chain}: it is {kind}, not a regular file"
                ],
            )
            self.assertIs(tls.material.certificate, old)
        os.remove(chain)
        write_tls_dir(tlsdir, ca)
        clock.advance(CHECK_INTERVAL)
        self.assertEqual(tls.material.certificate, load_tls_dir(tlsdir).certificate)
        self.assertNotEqual(tls.material.certificate, old)

    def test_brokenChainLinkRefused(self) -> None:
        """
        A renewal whose ca.pem is a link that leads nowhere is refused
        naming the broken link, and the current certificate, with its
        chain, stays; it was served without a chain.  A SIGHUP's reload
        says the same.
        """
        tlsdir, ca, tls, clock = self.reloading()
        material = tls.material
        write_tls_dir(tlsdir, ca)
        chain = os.path.join(tlsdir, "ca.pem")
        os.remove(chain)
        os.symlink(os.path.join(tlsdir, "renewed-ca.pem"), chain)
        with capturedLogs() as events:
            clock.advance(CHECK_INTERVAL)
            self.assertFalse(self.reloader.reload("SIGHUP"))
        errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 2, errors)
        for error, why in zip(errors, ("the files changed", "SIGHUP")):
            self.assertEqual(
                error,
                f"TLS reload ({why}) failed, still serving the current certificate: {chain} is a broken "
                f"symbolic link (to {os.path.join(tlsdir, 'renewed-ca.pem')}): No such file or directory",
            )
        self.assertIs(tls.material, material)
        self.assertEqual(len(tls.material.chain), 1)

    def test_unchangedCertificateKept(self) -> None:
        """
        A reload that finds the certificate served already (a SIGHUP with
        nothing renewed) says so and leaves it in place: nothing is
        replaced, and no "now serving" line suggests a renewal.
        """
        tlsdir, ca, tls, clock = self.reloading()
        material = tls.material
        with capturedLogs() as events:
            self.assertFalse(self.reloader.reload("SIGHUP"))
        self.assertIs(tls.material, material)
        self.assertEqual([formatEvent(e) for e in events], ["TLS reload (SIGHUP): the certificate is unchanged"])


class SighupHandlerTests(SynchronousTestCase):
    def test_previousHandlerRestored(self) -> None:
        """
        A program that embeds the server with a SIGHUP handler of its own
        gets that handler back when the reloader stops (SIG_DFL instead
        would let the next SIGHUP kill it); while running, the reloader's
        handler is the one installed.
        """
        def mine(signum: int, frame: object) -> None:
            pass

        previous = signal.signal(signal.SIGHUP, mine)
        self.addCleanup(signal.signal, signal.SIGHUP, previous)
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        reloader = CertificateReloader(ServerTLS(load_tls_dir(tlsdir)), tlsdir, clock=Clock())
        reloader.startService()
        self.assertIsNot(signal.getsignal(signal.SIGHUP), mine)
        reloader.stopService()
        self.assertIs(signal.getsignal(signal.SIGHUP), mine)

    def test_notFromAnotherThread(self) -> None:
        """
        Started in a thread other than the main one (a reactor run as
        crochet runs it), where Python cannot install signal handlers,
        the reloader says it will not reload on SIGHUP, still checks its
        files, and stops without touching the program's handler.
        """
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        clock = Clock()
        reloader = CertificateReloader(ServerTLS(load_tls_dir(tlsdir)), tlsdir, clock=clock)
        before = signal.getsignal(signal.SIGHUP)
        failures: list[BaseException] = []

        def start() -> None:
            try:
                reloader.startService()
            except BaseException as e:
                failures.append(e)

        with capturedLogs() as events:
            thread = threading.Thread(target=start)
            thread.start()
            thread.join()
        self.assertEqual(failures, [])
        self.assertIs(signal.getsignal(signal.SIGHUP), before)
        [warning] = [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn]
        self.assertIn("Not reloading", warning)
        self.assertIn("outside the main thread", warning)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        reloader.stopService()
        self.assertIs(signal.getsignal(signal.SIGHUP), before)
        self.assertEqual(clock.getDelayedCalls(), [])
