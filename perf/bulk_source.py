"""A bulk REST source for the benchmarks: ``GET /<total>/rows?offset=N&limit=M`` answers ``{"rows": [...]}`` with
rows ``{a: i, b: 2i, c: i/2, d: i % 7}`` for ``i`` in ``[N, min(N+M, total))`` — the very rows ``bench_overhead``'s
bulk SQL generates, so OmniSQL serving this table (through ``perf/manifests/bulk.yaml``, then from its scan cache)
is compared with roapi and a bare pyarrow.flight server serving *the same table*. Stdlib HTTP on 127.0.0.1; a
short page ends the listing (offset paging)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson

__all__ = ["BulkSource", "page"]

MAX_LIMIT = 50_000
MAX_TOTAL = 100_000_000


def page(offset: int, limit: int, total: int) -> bytes:
    """One page of the table as JSON."""
    end = min(offset + min(limit, MAX_LIMIT), total)
    return orjson.dumps({"rows": [{"a": i, "b": 2 * i, "c": i * 0.5, "d": i % 7} for i in range(offset, end)]})


class BulkSource:
    """The source on a free port of 127.0.0.1, served from a daemon thread until ``stop``; ``base_url(total)`` is
    the base URL of a table of ``total`` rows (at most ``MAX_TOTAL``)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 -- the stdlib's name
                url = urlsplit(self.path)
                total, _, rest = url.path.strip("/").partition("/")
                query = parse_qs(url.query)
                try:
                    size, offset = int(total), int(query.get("offset", ["0"])[0])
                    limit = int(query.get("limit", ["1000"])[0])
                except ValueError:
                    self.send_error(400)
                    return
                if rest != "rows" or not 0 <= size <= MAX_TOTAL:
                    self.send_error(404)
                    return
                body = page(max(offset, 0), max(limit, 0), size)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- quiet
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="bulk-source", daemon=True)
        self.thread.start()

    def base_url(self, total: int) -> str:
        return f"{self.url}/{total}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
