"""
Run pingproto's client inside another Twisted program: log every round
trip, loss and state change of a link until interrupted.

    python3 examples/monitor.py wss://example.com:1234/ [CA-FILE]
"""

import sys

from twisted.internet import task
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from zope.interface import implementer

from pingproto import IPingObserver, PingMonitor

log = Logger()


@implementer(IPingObserver)
class Printer:
    def ping_replied(self, sample):
        log.info("seq={seq} rtt={ms:.2f} ms", seq=sample.seq, ms=sample.rtt * 1000)

    def ping_lost(self, loss):
        log.warn("seq={seq} lost ({reason})", seq=loss.seq, reason=loss.reason.value)

    def state_changed(self, change):
        log.info("{state} {detail}", state=change.state.name, detail=change.detail)

    def flatline(self, silence):
        log.warn("no echo for {silence} s: reconnecting", silence=silence)


def main(reactor, url, ca_file=None):
    # A link open but silent for 10 s is replaced, as the command line does.
    monitor = PingMonitor(url, Printer(), flatline=10.0, ca_file=ca_file, reactor=reactor)
    monitor.startService()
    reactor.addSystemEventTrigger("before", "shutdown", monitor.stopService)
    return monitor.done  # without a count, fires once stopped: runs until Ctrl-C


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 3:
        sys.exit(__doc__.strip())
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(main, sys.argv[1:])
