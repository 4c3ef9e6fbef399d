"""
Mount pingproto's echo at /ping in an existing twisted.web site.

    python3 examples/mount_in_site.py   # then: pingproto's client, or a page, at ws://127.0.0.1:8080/ping
"""

from autobahn.twisted.resource import WebSocketResource
from twisted.internet import endpoints, reactor
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from pingproto import EchoServerFactory


def make_site() -> Site:
    root = Resource()
    root.putChild(b"", Data(b"my existing site\n", "text/plain"))
    # paths=None: the site, not the factory, decides where the socket lives.
    root.putChild(b"ping", WebSocketResource(EchoServerFactory(paths=None)))
    return Site(root)


if __name__ == "__main__":
    endpoints.serverFromString(reactor, "tcp:8080:interface=127.0.0.1").listen(make_site())
    reactor.run()
