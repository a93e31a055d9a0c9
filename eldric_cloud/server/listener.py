"""The listening socket: bound by us (for SO_REUSEPORT), and closed without resetting queued clients.

A zero-downtime restart on one machine runs the new process beside the old one on the same port
(SO_REUSEPORT), in this order: the new process is ready and listening; then the old one stops
listening; then the old one drains. The kernel spreads new connections over every socket in the
group, and a connection still queued on a socket when it closes is reset. So the old process first
accepts everything already queued and then leaves the group at once (``shutdown`` is synchronous,
unlike Twisted's close on the next reactor turn). A connection completing its handshake in the few
microseconds between the two can still be reset; Linux 5.14+ with ``net.ipv4.tcp_migrate_req=1``
moves it to the new process instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket

from eldric_cloud.startup import ConfigError

logger = logging.getLogger("eldric_cloud.server")

BACKLOG = 2048


def bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """Bound, not listening yet: with SO_REUSEPORT, the kernel sends no connection to it before ``listen``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they
    # are TCP, and accepted sockets inherit it. With 0, uvicorn's headers and body left as two
    # segments and the second waited for the client's delayed ACK: 40 ms on every answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if reuse_port:
            hint = " (the process holding it must have been started with --reuse-port too)"
        else:
            hint = " (to start beside a running eldric-cloudd, both need --reuse-port)"
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.setblocking(False)
    return sock


def start_listening(sock: socket.socket) -> None:
    sock.listen(BACKLOG)


def stop_listening(port) -> None:
    """Close a Twisted ``tcp.Port``: accept what is queued first, then leave the SO_REUSEPORT group now."""
    port.stopReading()
    port.numberAccepts = BACKLOG * 4
    port.doRead()  # builds protocols for every connection the kernel already completed
    with contextlib.suppress(OSError):
        port.socket.shutdown(socket.SHUT_RDWR)
    port.stopListening()


def notify_systemd(state: str) -> None:
    """sd_notify(3) without libsystemd: READY=1 when serving, STOPPING=1 when draining."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), address)


def replace_old_process(pid: int | None) -> None:
    """``--replace PID``: now that this process listens and is ready, the old one may drain."""
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        logger.warning("--replace %s: no such process", pid)
    except PermissionError:
        logger.warning("--replace %s: not allowed to signal it", pid)
    else:
        logger.info("ready: sent SIGTERM to the process replaced (pid %s)", pid)
