"""No test reaches the network: a pytest plugin (conftest.py loads it) that refuses every socket
connection, and every name lookup, to anything but this machine's loopback.

Each attempt raises :class:`NetworkUsedError` (an ``OSError``, so code under test takes its
offline path at once instead of waiting on retries) and is recorded; a test that made one fails
afterwards, even when the code it called swallowed the error (scikit-learn's downloaders retry
and a loader may fall back quietly: the test would then pass offline and test something else
online). A test that needs the network is a bug to fix, not to mark.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest


class NetworkUsedError(ConnectionRefusedError):
    """A test tried to reach a host other than this machine."""


def is_loopback(host: object) -> bool:
    """127.0.0.0/8, ::1 and "localhost" are this machine; anything else (another address, any
    other name, whose lookup alone would ask a DNS server) is the network."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in (None, "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _network_guard(monkeypatch):
    attempts: list[str] = []

    def refuse(host: object, port: object) -> None:
        if not is_loopback(host):
            attempts.append(f"{host}:{port}")
            raise NetworkUsedError(f"tests may not use the network (tried {host}:{port})")

    def guarded(real):
        def call(sock, address, *args):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                refuse(address[0], address[1])
            return real(sock, address, *args)

        return call

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        refuse(host, port)
        return real_getaddrinfo(host, port, *args, **kwargs)

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, guarded(getattr(socket.socket, name)))
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    if attempts:
        pytest.fail("this test reached for the network: " + ", ".join(dict.fromkeys(attempts)), pytrace=False)
