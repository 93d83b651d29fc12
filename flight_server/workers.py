"""Several serving processes on one port, so one machine's cores all serve (Python runs one thread at a time per
process). Each worker is a full OmniSQL process — connectors, engine, Flight server — started with ``spawn``
(a fresh interpreter: nothing half-copied from a threaded parent) and bound to the same port with
``SO_REUSEPORT``: the kernel spreads connections over the workers, and a client's connection stays with one.

What the workers share and what they do not, and how that stays honest:
- tickets and bearer tokens are signed with one secret, so any worker redeems another's;
- without Redis each worker's rate-limit buckets get ``1/N`` of the tenant's burst and refill, and its admission
  caps ``1/N`` of the tenant's (rounded up): together they never exceed what the tenant configured. With
  ``cache.redis_url`` the buckets (and cache entries) live in Redis, shared exactly, as between replicas;
- the scan cache, sessions, statistics and ``omnisql.query_log`` are per worker (a connection's queries stay on
  its worker, so a client sees its own queries and sessions);
- the HTTP gateway runs in the first worker only (its port is not shared)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import secrets
import signal
import socket
from dataclasses import dataclass
from typing import Any

from connectors.ratelimit import RateLimit, RateLimits
from flight_server.config import ConfigError, TenantConfig
from flight_server.gateway.state import HttpSettings

__all__ = ["Workers", "start_workers", "worker_config"]

START_TIMEOUT_S = 120.0


@dataclass
class Workers:
    """The running workers: their common Flight URI and the first worker's HTTP URL."""

    uri: str
    http_url: str | None
    processes: list[multiprocessing.process.BaseProcess]
    _reserved: socket.socket

    def stop(self, timeout_s: float = 10.0) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker stops serving and closes its connectors
        for process in self.processes:
            process.join(timeout_s)
            if process.is_alive():
                process.kill()
        self._reserved.close()

    def wait(self) -> None:
        """Until any worker exits (then the rest are stopped: a half-served port is worse than none)."""
        multiprocessing.connection.wait([p.sentinel for p in self.processes])


def worker_config(config: TenantConfig, workers: int, port: int) -> TenantConfig:
    """The tenant's config as one of ``workers`` sees it: the shared port and secret, and its share of the rate
    limits (unless Redis shares the buckets) and of the admission caps."""
    limits = config.limits
    share = dataclasses.replace(
        limits, max_concurrent_queries=math.ceil(limits.max_concurrent_queries / workers),
        max_concurrent_queries_per_principal=math.ceil(limits.max_concurrent_queries_per_principal / workers))
    rate_limits = config.rate_limits
    if config.cache.redis_url is None:
        rate_limits = RateLimits(_share(rate_limits.default, workers),
                                 {name: _share(limit, workers) for name, limit in rate_limits.connectors.items()})
    return dataclasses.replace(config, port=port, secret=config.secret or secrets.token_bytes(32), limits=share,
                               rate_limits=rate_limits, share_port=True)


def _share(limit: RateLimit, workers: int) -> RateLimit:
    return dataclasses.replace(limit, burst=max(limit.burst // workers, 1), refill_per_s=limit.refill_per_s / workers)


def start_workers(config: TenantConfig, workers: int, http_settings: HttpSettings | None = None,
                  trace_exporter: str = "none") -> Workers:
    """Start ``workers`` serving processes on the config's port (port 0: one free port, chosen here and held
    with SO_REUSEPORT so nothing else takes it). Returns once every worker serves; ConfigError if one cannot."""
    reserved = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET, socket.SOCK_STREAM)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        reserved.bind((config.host, config.port))
    except OSError as exc:
        reserved.close()
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
    shared = worker_config(config, workers, reserved.getsockname()[1])
    context = multiprocessing.get_context("spawn")
    processes: list[multiprocessing.process.BaseProcess] = []
    readiness: list[multiprocessing.connection.Connection] = []
    for index in range(workers):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_serve, name=f"omnisql-worker-{index}", daemon=True,
                                  args=(shared, http_settings if index == 0 else None, trace_exporter, send))
        process.start()
        send.close()
        processes.append(process)
        readiness.append(receive)
    running = Workers("", None, processes, reserved)
    try:
        answers = [_ready(pipe, process) for pipe, process in zip(readiness, processes, strict=True)]
    except BaseException:
        running.stop()
        raise
    running.uri, running.http_url = answers[0]["uri"], answers[0].get("http_url")
    return running


def _ready(pipe: multiprocessing.connection.Connection, process: multiprocessing.process.BaseProcess
           ) -> dict[str, Any]:
    if not pipe.poll(START_TIMEOUT_S):
        raise ConfigError(f"{process.name} did not start within {START_TIMEOUT_S:g} s")
    try:
        answer: dict[str, Any] = pipe.recv()
    except EOFError:
        raise ConfigError(f"{process.name} exited while starting (exit code {process.exitcode})") from None
    if "error" in answer:
        raise ConfigError(f"{process.name}: {answer['error']}")
    return answer


def _serve(config: TenantConfig, http_settings: HttpSettings | None, trace_exporter: str,
           ready: multiprocessing.connection.Connection) -> None:
    """One worker: serve until SIGTERM (or SIGINT), then stop cleanly."""
    from flight_server.app import start_service

    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        service = start_service(config, http_settings, trace_exporter)
    except (ConfigError, OSError) as exc:
        ready.send({"error": str(exc)})
        return
    ready.send({"uri": service.uri, "http_url": service.http_url})
    ready.close()
    try:
        while not stopping:
            signal.pause()
    finally:
        with contextlib.suppress(Exception):
            service.stop()
