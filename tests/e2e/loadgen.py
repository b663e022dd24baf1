"""A small HTTP/1.1 load generator for the contention tests: many keep-alive connections on one
asyncio loop (no GIL-bound thread per client), each request timed from its first byte sent to
its last byte read.

    results = run(port, [Req("POST", "/v1/reservations", headers, body), ...], concurrency=200)

Every request is answered or recorded as an error; nothing is retried here.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None          # JSON-encoded when not bytes
    tag: Any = None           # the caller's, carried to the result


@dataclass
class Res:
    req: Req
    status: int | None        # None: no answer (error says why)
    headers: dict[str, str]
    body: bytes
    latency: float            # seconds
    error: str | None = None
    done_at: float = 0.0      # time.perf_counter() when the answer (or the error) was complete

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        try:
            return self.json()["error"]["code"]
        except Exception:  # noqa: BLE001 - not an error body
            return None


def _encode(req: Req, host: str) -> bytes:
    body = b""
    if req.body is not None:
        body = req.body if isinstance(req.body, bytes) else json.dumps(req.body).encode()
    lines = [f"{req.method} {req.path} HTTP/1.1", f"Host: {host}"]
    headers = dict(req.headers)
    if req.body is not None:
        headers.setdefault("Content-Type", "application/json")
    if body or req.method in ("POST", "PUT", "PATCH"):
        headers["Content-Length"] = str(len(body))
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = b""
    return status, headers, body


async def _run(port: int, reqs: list[Req], concurrency: int, timeout: float) -> list[Res]:
    host = f"127.0.0.1:{port}"
    results: list[Res | None] = [None] * len(reqs)
    next_index = iter(range(len(reqs)))
    go = asyncio.Event()
    ready = asyncio.Semaphore(0)

    async def connect():
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, limit=1 << 20), timeout)

    async def worker():
        conn = None
        try:
            conn = await connect()
        except (OSError, asyncio.TimeoutError):
            conn = None
        ready.release()
        await go.wait()
        for i in next_index:
            req = reqs[i]
            start = time.perf_counter()
            try:
                if conn is None:
                    conn = await connect()
                reader, writer = conn
                writer.write(_encode(req, host))
                await writer.drain()
                status, headers, body = await asyncio.wait_for(_read_response(reader), timeout)
                now = time.perf_counter()
                results[i] = Res(req, status, headers, body, now - start, done_at=now)
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    conn = None
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                now = time.perf_counter()
                results[i] = Res(req, None, {}, b"", now - start, f"{type(exc).__name__}: {exc}", done_at=now)
                if conn is not None:
                    conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(reqs)))]
    for _ in workers:  # every connection open before the first request: all start together
        await ready.acquire()
    go.set()
    await asyncio.gather(*workers)
    return [r for r in results if r is not None]


def run(port: int, reqs: list[Req], concurrency: int = 200, timeout: float = 30.0) -> list[Res]:
    """Sends every request over `concurrency` keep-alive connections; returns the results in
    the order of `reqs`."""
    return asyncio.run(_run(port, reqs, concurrency, timeout))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]
