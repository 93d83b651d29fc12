"""The gateway's uvicorn server on a thread of its own (its own asyncio loop; queries run on worker threads),
bound before it starts so ``--http-port 0`` knows its port at once, and stopped with the Flight server."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from flight_server.gateway.app import build_app
from flight_server.gateway.state import GatewayState
from flight_server.metrics import ServiceCollector

__all__ = ["Gateway", "GatewayError", "start_gateway"]

START_TIMEOUT_S = 15.0


class GatewayError(Exception):
    """The HTTP port cannot be served (in use, not allowed)."""


@dataclass
class Gateway:
    server: uvicorn.Server
    thread: threading.Thread
    url: str
    state: GatewayState

    def stop(self) -> None:
        self.state.ready = False
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_gateway(state: GatewayState, host: str, port: int, tls_cert_file: str | None = None,
                  tls_key_file: str | None = None) -> Gateway:
    """Serve the gateway on ``host:port`` (0: a free port); returns once it accepts connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP, and
    # without it every answer on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise GatewayError(f"cannot serve HTTP on {host}:{port} ({exc.strerror}); pick another --http-port, or "
                           "--no-http") from exc
    sock.listen(128)
    state.metrics.register(ServiceCollector(state.engine.cache, state.admission))
    tls = bool(tls_cert_file and tls_key_file)
    config = uvicorn.Config(build_app(state), log_config=None, access_log=False, lifespan="off",
                            ssl_certfile=tls_cert_file if tls else None, ssl_keyfile=tls_key_file if tls else None,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="omnisql-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise GatewayError(f"the HTTP server on {host}:{port} did not start")
        time.sleep(0.01)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    state.ready = True
    return Gateway(server, thread, f"{'https' if tls else 'http'}://{shown}:{bound}", state)
