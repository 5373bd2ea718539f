#!/usr/bin/env python3
"""slow_s3_proxy: make a local S3 server (moto_server) behave like S3 over the internet.

An HTTP/1.1 reverse proxy, pure standard library (asyncio streams), that sits in front
of an S3 server on 127.0.0.1 and adds:

  * latency per request (lognormal: median --latency-ms, shape --latency-sigma, capped
    at --latency-max-ms), slept before the request is forwarded;
  * request-rate limits (--max-rps for all requests, --max-put-rps for PUT/POST) as a
    sliding one-second window over the requests *forwarded* to the backend; a request
    over the limit is answered by the proxy with 503 SlowDown and Retry-After: 1;
  * outages: refuse (close connections), error500 (500 InternalError), reset (TCP RST),
    for N seconds or until switched off;
  * a JSON control API on --control-port (stats, outage, config, reset-stats).

Usage:
  python3 tests/tools/slow_s3_proxy.py --listen 127.0.0.1:9100 \
      --backend 127.0.0.1:5000 --control-port 9101 [--latency-ms 30 --latency-sigma 0.5]
      [--max-rps N] [--max-put-rps N]

Prints "listening PROXY_ADDR control CONTROL_ADDR" and then "ready" on stdout once both
sockets listen; exits with status 0 on SIGTERM or SIGINT.

The Host header (and every other header except Expect) is forwarded unchanged, so a
SigV4 client signs for the proxy's host:port; moto does not check signatures, so that is
fine. See tests/tools/README.md for the semantics of every knob.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ipaddress
import json
import math
import os
import random
import signal
import socket
import struct
import sys
import time
import urllib.parse

READ_SIZE = 1 << 20          # bytes asked for per read while streaming bodies
STREAM_LIMIT = 1 << 20       # StreamReader buffer limit (and the largest header block)
WRITE_HIGH_WATER = 4 << 20   # transport write buffer before drain() waits
LINGER_SECONDS = 2.0         # how long to discard unread input before closing
NO_BODY_STATUS = {204, 304}
HISTORY_SECONDS = 600        # length of the per-second history in /stats
OUTAGE_MODES = ("refuse", "error500", "reset")

_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found",
            405: "Method Not Allowed", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 we understand."""


class UpstreamError(Exception):
    """The backend connection failed or closed before a complete response."""


# --------------------------------------------------------------------------
# HTTP message heads
# --------------------------------------------------------------------------

class Head:
    """A parsed request or response head. `first` is the request or status line;
    `headers` keeps the original names and order."""
    __slots__ = ("raw", "first", "headers", "_index")

    def __init__(self, raw: bytes):
        self.raw = raw
        lines = raw[:-4].split(b"\r\n")
        self.first = lines[0]
        self.headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            if not line:
                continue
            if line[:1] in (b" ", b"\t"):  # obsolete line folding: glue to the previous value
                if not self.headers:
                    raise ProtocolError("folded header line without a header")
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + b" " + line.strip())
                continue
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise ProtocolError(f"bad header line {line[:80]!r}")
            self.headers.append((name, value.strip()))
        self._index = None

    def get(self, name: str) -> bytes | None:
        """The last value of a header (case-insensitive), or None."""
        if self._index is None:
            self._index = {}
            for n, v in self.headers:
                self._index[n.lower()] = v
        return self._index.get(name.encode().lower())

    def tokens(self, name: str) -> set[bytes]:
        """The comma-separated tokens of all the header's values, lower-cased."""
        key = name.encode().lower()
        out = set()
        for n, v in self.headers:
            if n.lower() == key:
                out.update(t.strip().lower() for t in v.split(b","))
        return out

    def rebuild(self, drop: tuple[str, ...] = (), add: list[tuple[bytes, bytes]] = ()) -> bytes:
        dropset = {d.encode().lower() for d in drop}
        parts = [self.first]
        parts += [n + b": " + v for n, v in self.headers if n.lower() not in dropset]
        parts += [n + b": " + v for n, v in add]
        return b"\r\n".join(parts) + b"\r\n\r\n"


class Request(Head):
    __slots__ = ("method", "target", "version", "chunked", "length", "expect_continue")

    def __init__(self, raw: bytes):
        super().__init__(raw)
        parts = self.first.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise ProtocolError(f"bad request line {self.first[:100]!r}")
        self.method = parts[0].decode("latin-1").upper()
        self.target = parts[1].decode("latin-1")
        self.version = parts[2]
        te = self.tokens("transfer-encoding")
        self.chunked = b"chunked" in te
        if te and not self.chunked:
            raise ProtocolError("unsupported Transfer-Encoding")
        self.length = 0
        if not self.chunked:
            cl = self.get("content-length")
            if cl is not None:
                try:
                    self.length = int(cl)
                except ValueError:
                    raise ProtocolError("bad Content-Length") from None
                if self.length < 0:
                    raise ProtocolError("negative Content-Length")
        self.expect_continue = (self.get("expect") or b"").strip().lower() == b"100-continue"

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0

    @property
    def keep_alive(self) -> bool:
        conn = self.tokens("connection")
        if self.version == b"HTTP/1.0":
            return b"keep-alive" in conn
        return b"close" not in conn


class Response(Head):
    __slots__ = ("version", "status")

    def __init__(self, raw: bytes):
        super().__init__(raw)
        parts = self.first.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise UpstreamError(f"bad status line {self.first[:100]!r}")
        self.version = parts[0]
        try:
            self.status = int(parts[1])
        except ValueError:
            raise UpstreamError(f"bad status line {self.first[:100]!r}") from None


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """One message head up to and including the blank line; None on a clean EOF before
    any byte. Stray empty lines before a request line are skipped (RFC 9112 2.2)."""
    while True:
        try:
            data = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial.strip():
                return None
            raise ProtocolError("connection closed inside a message head") from None
        except asyncio.LimitOverrunError:
            raise ProtocolError("message head too large") from None
        data = data.lstrip(b"\r\n")
        if data:
            return data if data.endswith(b"\r\n\r\n") else data + b"\r\n\r\n"


# --------------------------------------------------------------------------
# Body streaming (never buffers a whole body)
# --------------------------------------------------------------------------

async def copy_exact(reader, writer, n: int) -> int:
    """Copy exactly n bytes; writer None discards them. Returns n."""
    left = n
    while left > 0:
        data = await reader.read(left if left < READ_SIZE else READ_SIZE)
        if not data:
            raise asyncio.IncompleteReadError(b"", left)
        left -= len(data)
        if writer is not None:
            writer.write(data)
            await writer.drain()
    return n


async def copy_chunked(reader, writer) -> int:
    """Relay a chunked body verbatim (chunk-size lines, data, trailers); returns the
    number of payload bytes. writer None discards it."""
    total = 0
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            raise ProtocolError("chunk-size line too long") from None
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk-size line {line[:40]!r}") from None
        if writer is not None:
            writer.write(line)
        if size == 0:
            while True:  # trailer section, ends with an empty line
                t = await reader.readuntil(b"\r\n")
                if writer is not None:
                    writer.write(t)
                if t == b"\r\n":
                    break
            if writer is not None:
                await writer.drain()
            return total
        await copy_exact(reader, writer, size + 2)  # data and its CRLF
        total += size


async def copy_until_eof(reader, writer) -> int:
    total = 0
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            return total
        total += len(data)
        writer.write(data)
        await writer.drain()


def _tune(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    try:
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
    except (AttributeError, RuntimeError):
        pass


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        try:
            writer.close()
        except Exception:
            pass


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def linger_close(reader, writer, timeout: float = LINGER_SECONDS) -> None:
    """Half-close, discard what the client still sends (up to `timeout`), then close, so a
    client still sending a body reads our response instead of a reset."""
    try:
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            data = await asyncio.wait_for(reader.read(READ_SIZE), left)
            if not data:
                break
    except (asyncio.TimeoutError, OSError, RuntimeError, asyncio.IncompleteReadError):
        pass
    finally:
        _close(writer)


# --------------------------------------------------------------------------
# Settings, statistics, rate limiting
# --------------------------------------------------------------------------

class Settings:
    def __init__(self, args):
        self.latency_ms = float(args.latency_ms)
        self.latency_sigma = float(args.latency_sigma)
        self.latency_max_ms = float(args.latency_max_ms)
        self.max_rps = int(args.max_rps)
        self.max_put_rps = int(args.max_put_rps)
        self.put_methods = frozenset(m.strip().upper() for m in args.put_methods.split(",") if m.strip())
        self.rng = random.Random(args.seed)

    def sample_latency(self) -> float:
        """Seconds to wait before forwarding one request."""
        if self.latency_ms <= 0:
            return 0.0
        ms = self.latency_ms
        if self.latency_sigma > 0:
            ms = self.rng.lognormvariate(math.log(self.latency_ms), self.latency_sigma)
        if self.latency_max_ms > 0:
            ms = min(ms, self.latency_max_ms)
        return ms / 1000.0

    def as_dict(self) -> dict:
        return {"latency_ms": self.latency_ms, "latency_sigma": self.latency_sigma,
                "latency_max_ms": self.latency_max_ms, "max_rps": self.max_rps,
                "max_put_rps": self.max_put_rps, "put_methods": sorted(self.put_methods),
                "rate_limit": "sliding 1 s window over forwarded requests"}


class Window:
    """Timestamps (monotonic) of the events of the last second; `peak` is the largest
    number of events ever seen within any half-open one-second window (t-1, t]."""
    __slots__ = ("q", "peak")

    def __init__(self):
        self.q = collections.deque()
        self.peak = 0

    def count(self, now: float) -> int:
        q = self.q
        edge = now - 1.0
        while q and q[0] <= edge:
            q.popleft()
        return len(q)

    def add(self, now: float) -> None:
        n = self.count(now) + 1
        self.q.append(now)
        if n > self.peak:
            self.peak = n


class PerSecond:
    """Counts per wall-clock second for the last HISTORY_SECONDS seconds."""
    __slots__ = ("counts", "stamps")

    def __init__(self):
        self.counts = [0] * HISTORY_SECONDS
        self.stamps = [-1] * HISTORY_SECONDS

    def add(self, wall: float) -> None:
        s = int(wall)
        i = s % HISTORY_SECONDS
        if self.stamps[i] != s:
            self.stamps[i] = s
            self.counts[i] = 0
        self.counts[i] += 1

    def history(self, now_s: int) -> list[int]:
        out = []
        for s in range(now_s - HISTORY_SECONDS + 1, now_s + 1):
            i = s % HISTORY_SECONDS
            out.append(self.counts[i] if self.stamps[i] == s else 0)
        return out


class Stats:
    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.since = time.time()
        self.requests = 0
        self.by_method = collections.Counter()
        self.by_status = collections.Counter()          # what clients got, incl. the proxy's own
        self.backend_by_status = collections.Counter()  # what the backend answered
        self.forwarded = 0
        self.forwarded_by_method = collections.Counter()
        self.slowdown_503 = 0
        self.outage = collections.Counter()   # refused_connections, refuse, error500, reset
        self.bad_gateway_502 = 0
        self.bad_requests_400 = 0
        self.connections = 0
        self.upstream_connections = 0
        self.bytes_from_clients = 0
        self.bytes_to_clients = 0
        self.latency_total_s = 0.0
        self.latency_max_s = 0.0
        self.win_all = Window()
        self.win_put = Window()
        self.sec_all = PerSecond()
        self.sec_put = PerSecond()

    def forwarded_one(self, method: str, is_put: bool, now: float) -> None:
        self.forwarded += 1
        self.forwarded_by_method[method] += 1
        self.win_all.add(now)
        wall = time.time()
        self.sec_all.add(wall)
        if is_put:
            self.win_put.add(now)
            self.sec_put.add(wall)


class Limiter:
    """Sliding-window rate limit: a request is forwarded only if fewer than N requests
    (of its class) were forwarded in the preceding second, so no one-second window of
    forwarded requests ever holds more than N."""

    def __init__(self):
        self.all = Window()
        self.put = Window()

    def admit(self, settings: Settings, is_put: bool, now: float) -> bool:
        if settings.max_rps > 0 and self.all.count(now) >= settings.max_rps:
            return False
        if is_put and settings.max_put_rps > 0 and self.put.count(now) >= settings.max_put_rps:
            return False
        self.all.add(now)
        if is_put:
            self.put.add(now)
        return True


class Outage:
    def __init__(self):
        self.mode = "off"
        self.until = None  # monotonic deadline, or None = until switched off
        self.since = None

    def current(self) -> str:
        if self.mode != "off" and self.until is not None and time.monotonic() >= self.until:
            self.mode, self.until, self.since = "off", None, None
        return self.mode

    def set(self, mode: str, seconds: float | None) -> None:
        if mode == "off":
            self.mode, self.until, self.since = "off", None, None
            return
        self.mode = mode
        self.since = time.time()
        self.until = time.monotonic() + seconds if seconds and seconds > 0 else None

    def as_dict(self) -> dict:
        mode = self.current()
        left = None
        if mode != "off" and self.until is not None:
            left = round(max(0.0, self.until - time.monotonic()), 3)
        return {"mode": mode, "seconds_left": left, "since": self.since}


def s3_error_xml(code: str, message: str, request_id: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>").encode()


# --------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------

class ClientConn:
    __slots__ = ("reader", "writer", "up_reader", "up_writer")

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.up_reader = None
        self.up_writer = None

    def drop_upstream(self) -> None:
        if self.up_writer is not None:
            self.up_writer.transport.abort()
        self.up_reader = self.up_writer = None


class Proxy:
    def __init__(self, args):
        self.args = args
        self.backend_host, self.backend_port = args.backend
        self.settings = Settings(args)
        self.stats = Stats()
        self.limiter = Limiter()
        self.outage = Outage()
        if args.outage and args.outage != "off":
            self.outage.set(args.outage, args.outage_seconds)
        self.tasks: set[asyncio.Task] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.verbose = args.verbose

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    # ---- connections -----------------------------------------------------

    async def handle_client(self, reader, writer) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        self.writers.add(writer)
        self.stats.connections += 1
        conn = ClientConn(reader, writer)
        try:
            if self.outage.current() == "refuse":
                self.stats.outage["refused_connections"] += 1
                _close(writer)
                return
            _tune(writer)
            while True:
                try:
                    raw = await read_head(reader)
                except ProtocolError as e:
                    self.stats.bad_requests_400 += 1
                    self.stats.by_status[400] += 1
                    await self.send_simple(writer, 400, "BadRequest", str(e), close=True)
                    await linger_close(reader, writer)
                    return
                if raw is None:
                    return
                try:
                    req = Request(raw)
                except ProtocolError as e:
                    self.stats.bad_requests_400 += 1
                    self.stats.by_status[400] += 1
                    await self.send_simple(writer, 400, "BadRequest", str(e), close=True)
                    await linger_close(reader, writer)
                    return
                if not await self.handle_request(conn, req):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ProtocolError, UpstreamError,
                OSError, RuntimeError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            conn.drop_upstream()
            _close(writer)
            self.writers.discard(writer)
            self.tasks.discard(task)

    async def upstream(self, conn: ClientConn) -> bool:
        """Make sure conn has a live backend connection; True if it was reused."""
        if conn.up_writer is not None:
            if not conn.up_reader.at_eof() and not conn.up_writer.is_closing() \
                    and not conn.up_reader._buffer:  # noqa: SLF001 (stray bytes = unusable)
                return True
            conn.drop_upstream()
        r, w = await asyncio.open_connection(self.backend_host, self.backend_port, limit=STREAM_LIMIT)
        _tune(w)
        conn.up_reader, conn.up_writer = r, w
        self.stats.upstream_connections += 1
        return False

    # ---- one request -----------------------------------------------------

    async def handle_request(self, conn: ClientConn, req: Request) -> bool:
        """Serve one request; returns whether the client connection stays open."""
        st = self.stats
        st.requests += 1
        st.by_method[req.method] += 1
        t0 = time.monotonic()

        delay = self.settings.sample_latency()
        if delay > 0:
            st.latency_total_s += delay
            st.latency_max_s = max(st.latency_max_s, delay)
            await asyncio.sleep(delay)

        mode = self.outage.current()
        if mode == "refuse":
            st.outage["refuse"] += 1
            self.log(f"{req.method} {req.target} -> outage refuse (closed)")
            return False
        if mode == "reset":
            st.outage["reset"] += 1
            self.log(f"{req.method} {req.target} -> outage reset (RST)")
            _reset(conn.writer)
            return False
        if mode == "error500":
            st.outage["error500"] += 1
            self.log(f"{req.method} {req.target} -> outage 500")
            return await self.reject(conn, req, 500, "InternalError",
                                     "We encountered an internal error. Please try again.")

        is_put = req.method in self.settings.put_methods
        now = time.monotonic()
        if not self.limiter.admit(self.settings, is_put, now):
            st.slowdown_503 += 1
            self.log(f"{req.method} {req.target} -> 503 SlowDown")
            return await self.reject(conn, req, 503, "SlowDown", "Please reduce your request rate.",
                                     extra=[(b"Retry-After", b"1")])
        st.forwarded_one(req.method, is_put, now)
        keep = await self.forward(conn, req)
        self.log(f"{req.method} {req.target} forwarded in {time.monotonic() - t0:.3f}s "
                 f"(latency {delay * 1000:.0f} ms) keep={keep}")
        return keep

    async def send_simple(self, writer, status: int, code: str, message: str, *, close: bool,
                          head_only: bool = False, extra=()) -> None:
        rid = os.urandom(8).hex().upper()
        body = s3_error_xml(code, message, rid)
        hdrs = [(b"Content-Type", b"application/xml"),
                (b"Content-Length", str(len(body)).encode()),
                (b"x-amz-request-id", rid.encode()),
                (b"Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()).encode()),
                (b"Server", b"slow_s3_proxy")]
        hdrs += list(extra)
        if close:
            hdrs.append((b"Connection", b"close"))
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n".encode()
        head += b"".join(n + b": " + v + b"\r\n" for n, v in hdrs) + b"\r\n"
        writer.write(head if head_only else head + body)
        self.stats.bytes_to_clients += len(head) + (0 if head_only else len(body))
        await writer.drain()

    async def reject(self, conn: ClientConn, req: Request, status: int, code: str, message: str,
                     extra=()) -> bool:
        """Answer with an S3 error without forwarding. A body the client already sends is
        drained (keep-alive); one held back by Expect: 100-continue is never asked for: the
        answer carries Connection: close and the connection is closed after a linger
        (botocore, answered without a 100, cannot use the connection reliably again)."""
        self.stats.by_status[status] += 1
        head_only = req.method == "HEAD"
        if req.expect_continue:  # (even without a body: see the 100 in forward())
            await self.send_simple(conn.writer, status, code, message, close=True,
                                   head_only=head_only, extra=extra)
            await linger_close(conn.reader, conn.writer)
            return False
        if req.has_body:
            if req.chunked:
                n = await copy_chunked(conn.reader, None)
            else:
                n = await copy_exact(conn.reader, None, req.length)
            self.stats.bytes_from_clients += n
        keep = req.keep_alive
        await self.send_simple(conn.writer, status, code, message, close=not keep,
                               head_only=head_only, extra=extra)
        return keep

    async def pump_body(self, conn: ClientConn, req: Request, up_writer) -> None:
        if req.chunked:
            n = await copy_chunked(conn.reader, up_writer)
        else:
            n = await copy_exact(conn.reader, up_writer, req.length)
        self.stats.bytes_from_clients += n

    async def forward(self, conn: ClientConn, req: Request) -> bool:
        st = self.stats
        # Expect: 100-continue is answered here (after the latency and the checks above, as
        # S3 answers it after a round trip); the backend gets the request without it.
        head = req.rebuild(drop=("expect",)) if req.expect_continue else req.raw
        sent_100 = False
        for attempt in (0, 1):
            try:
                reused = await self.upstream(conn)
            except OSError as e:
                return await self.bad_gateway(conn, req, f"backend unreachable: {e}")
            conn.up_writer.write(head)
            body_task = None
            if req.expect_continue and not sent_100:
                sent_100 = True
                # also for an empty body, as S3 and werkzeug do: botocore, answered with a
                # final status instead, keeps that status line for the connection's next
                # Expect request and misreads its response
                conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if req.has_body:
                up_w = conn.up_writer
                body_task = asyncio.ensure_future(self.pump_body(conn, req, up_w))
                # if the body cannot be read (client gone or broken), the backend would wait
                # forever for it: cut the backend connection so the response read ends too
                body_task.add_done_callback(
                    lambda t, w=up_w: (not t.cancelled() and t.exception() is not None)
                    and w.transport.abort())
            try:
                resp = await self.read_response_head(conn, req)
            except (UpstreamError, ConnectionError, asyncio.IncompleteReadError, OSError) as e:
                if body_task is not None:
                    body_task.cancel()
                    try:
                        await body_task
                    except BaseException:
                        pass
                conn.drop_upstream()
                if reused and attempt == 0 and not req.has_body and isinstance(e, UpstreamError) \
                        and str(e) == "closed before the response":
                    continue  # a stale keep-alive connection: try once more on a fresh one
                if body_task is not None and body_task.done() and not body_task.cancelled() \
                        and body_task.exception() is not None:
                    return False  # the client went away mid-body
                return await self.bad_gateway(conn, req, f"backend failed: {e}", close=True)
            break

        st.backend_by_status[resp.status] += 1
        st.by_status[resp.status] += 1

        up_keep = resp.version != b"HTTP/1.0" and b"close" not in resp.tokens("connection")
        if req.method == "HEAD" or resp.status in NO_BODY_STATUS or 100 <= resp.status < 200:
            framing = "none"
        elif b"chunked" in resp.tokens("transfer-encoding"):
            framing = "chunked"
        elif resp.get("content-length") is not None:
            framing = "length"
        else:
            framing = "eof"
            up_keep = False
        client_keep = req.keep_alive and framing != "eof"

        # An early answer (the backend did not wait for the whole body) ends the connection.
        if body_task is not None and not body_task.done():
            await asyncio.wait({body_task}, timeout=0.05)  # normally only its last wake-up is due
        early = body_task is not None and not body_task.done()
        # Connection is hop-by-hop: the client's connection stays open even when the
        # backend's does not (moto_server closes after every response), and is closed
        # only when the client asked for it, the body is delimited by the close, or the
        # backend answered early.
        if early:
            client_keep = False
        drop = ("connection", "keep-alive") if resp.get("connection") is not None \
            or resp.get("keep-alive") is not None else ()
        add = [] if client_keep else [(b"Connection", b"close")]
        out_head = resp.rebuild(drop=drop, add=add) if (drop or add) else resp.raw
        cw = conn.writer
        cw.write(out_head)
        st.bytes_to_clients += len(out_head)
        try:
            if framing == "length":
                try:
                    n = int(resp.get("content-length"))
                except ValueError:
                    raise UpstreamError("bad Content-Length from the backend") from None
                st.bytes_to_clients += await copy_exact(conn.up_reader, cw, n)
            elif framing == "chunked":
                st.bytes_to_clients += await copy_chunked(conn.up_reader, cw)
            elif framing == "eof":
                st.bytes_to_clients += await copy_until_eof(conn.up_reader, cw)
            await cw.drain()
        except (asyncio.IncompleteReadError, ProtocolError, UpstreamError):
            # the backend broke off mid-body: the client must see a broken response
            conn.drop_upstream()
            if body_task is not None:
                body_task.cancel()
            return False

        if body_task is not None:
            if not body_task.done():
                # usually just the last write's wake-up still pending; a backend that answered
                # without reading the body leaves it stuck
                await asyncio.wait({body_task}, timeout=1.0)
            if not body_task.done():
                body_task.cancel()
                try:
                    await body_task
                except BaseException:
                    pass
                conn.drop_upstream()
                await linger_close(conn.reader, cw)
                return False
            if body_task.cancelled() or body_task.exception() is not None:
                conn.drop_upstream()
                return False
        if not up_keep:
            conn.drop_upstream()
        return client_keep

    async def read_response_head(self, conn: ClientConn, req: Request) -> Response:
        """The final response head; interim 1xx answers other than 100 are relayed."""
        while True:
            try:
                raw = await read_head(conn.up_reader)
            except ProtocolError as e:
                raise UpstreamError(str(e)) from None
            if raw is None:
                raise UpstreamError("closed before the response")
            resp = Response(raw)
            if 100 <= resp.status < 200 and resp.status != 101:
                if resp.status != 100:
                    conn.writer.write(raw)
                continue
            return resp

    async def bad_gateway(self, conn: ClientConn, req: Request, why: str, close: bool = False) -> bool:
        self.stats.bad_gateway_502 += 1
        self.log(f"{req.method} {req.target} -> 502 ({why})")
        if close:
            self.stats.by_status[502] += 1
            await self.send_simple(conn.writer, 502, "BadGateway", why, close=True,
                                   head_only=req.method == "HEAD")
            await linger_close(conn.reader, conn.writer)
            return False
        return await self.reject(conn, req, 502, "BadGateway", why)

    # ---- control API -----------------------------------------------------

    def stats_doc(self) -> dict:
        st = self.stats
        now_s = int(time.time())
        st.win_all.count(time.monotonic())
        st.win_put.count(time.monotonic())
        return {
            "since": st.since,
            "uptime_s": round(time.time() - st.since, 3),
            "requests": st.requests,
            "by_method": dict(st.by_method),
            "by_status": {str(k): v for k, v in sorted(st.by_status.items())},
            "backend_by_status": {str(k): v for k, v in sorted(st.backend_by_status.items())},
            "forwarded": st.forwarded,
            "forwarded_by_method": dict(st.forwarded_by_method),
            "slowdown_503": st.slowdown_503,
            "error500_sent": st.outage["error500"],
            "outage_events": dict(st.outage),
            "bad_gateway_502": st.bad_gateway_502,
            "bad_request_400": st.bad_requests_400,
            "connections": st.connections,
            "open_connections": len(self.writers),
            "upstream_connections": st.upstream_connections,
            "bytes_from_clients": st.bytes_from_clients,
            "bytes_to_clients": st.bytes_to_clients,
            "latency_added_total_s": round(st.latency_total_s, 6),
            "latency_added_max_s": round(st.latency_max_s, 6),
            "peak_rps": st.win_all.peak,
            "peak_put_rps": st.win_put.peak,
            "current_rps": len(st.win_all.q),
            "current_put_rps": len(st.win_put.q),
            "per_second_end": now_s,
            "per_second_puts": st.sec_put.history(now_s),
            "per_second_requests": st.sec_all.history(now_s),
            "config": self.settings.as_dict(),
            "outage": self.outage.as_dict(),
        }

    def control(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        reading = method in ("GET", "HEAD")
        if path == "/health":
            return (200, {"ok": True}) if reading else (405, {"error": "/health needs GET"})
        if path == "/stats":
            return (200, self.stats_doc()) if reading else (405, {"error": "/stats needs GET"})
        if path == "/config" and reading:
            return 200, self.settings.as_dict()
        if path == "/outage" and reading:
            return 200, self.outage.as_dict()
        if path not in ("/config", "/outage", "/reset-stats"):
            return 404, {"error": f"no such endpoint {path}"}
        if method != "POST":
            return 405, {"error": f"{path} needs POST"}
        if path == "/reset-stats":
            self.stats.reset()
            return 200, {"ok": True}
        if path == "/outage":
            mode = str(params.get("mode", "")).lower()
            if mode not in OUTAGE_MODES + ("off",):
                return 400, {"error": f"mode must be one of {', '.join(OUTAGE_MODES)}, off"}
            seconds = None
            if params.get("seconds") not in (None, ""):
                try:
                    seconds = float(params["seconds"])
                except (TypeError, ValueError):
                    return 400, {"error": "seconds must be a number"}
            self.outage.set(mode, seconds)
            print(f"outage {mode}" + (f" for {seconds}s" if seconds else ""), file=sys.stderr, flush=True)
            return 200, self.outage.as_dict()
        if path == "/config":
            s = self.settings
            conv = {"max_rps": int, "max_put_rps": int, "latency_ms": float,
                    "latency_sigma": float, "latency_max_ms": float}
            new = {}
            for k, v in params.items():
                if k == "put_methods":
                    new[k] = frozenset(m.strip().upper() for m in str(v).split(",") if m.strip())
                    continue
                if k == "seed":
                    s.rng.seed(int(v))
                    continue
                if k not in conv:
                    return 400, {"error": f"unknown setting {k!r}"}
                try:
                    new[k] = conv[k](float(v)) if conv[k] is int else conv[k](v)
                except (TypeError, ValueError):
                    return 400, {"error": f"{k} must be a number"}
                if new[k] < 0:
                    return 400, {"error": f"{k} must be >= 0"}
            for k, v in new.items():
                setattr(s, k, v)
            return 200, s.as_dict()
        return 404, {"error": f"no such endpoint {path}"}

    async def handle_control(self, reader, writer) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            raw = await asyncio.wait_for(read_head(reader), 30)
            if raw is None:
                return
            req = Request(raw)
            body = b""
            if req.chunked:
                chunks = []
                while True:
                    line = await reader.readuntil(b"\r\n")
                    size = int(line.split(b";", 1)[0], 16)
                    if size == 0:
                        while await reader.readuntil(b"\r\n") != b"\r\n":
                            pass
                        break
                    chunks.append((await reader.readexactly(size + 2))[:-2])
                body = b"".join(chunks)
            elif req.length:
                body = await reader.readexactly(min(req.length, 1 << 20))
            u = urllib.parse.urlsplit(req.target)
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
            if body.strip():
                ctype = (req.get("content-type") or b"").lower()
                try:
                    if b"json" in ctype or body.lstrip()[:1] == b"{":
                        doc = json.loads(body)
                        if isinstance(doc, dict):
                            params.update({k: v for k, v in doc.items()})
                    else:
                        params.update({k: v[-1] for k, v in urllib.parse.parse_qs(
                            body.decode("latin-1"), keep_blank_values=True).items()})
                except ValueError:
                    pass
            try:
                status, doc = self.control(req.method, u.path.rstrip("/") or "/", params)
            except Exception as e:  # a bad value must not kill the proxy
                status, doc = 400, {"error": f"{type(e).__name__}: {e}"}
            out = json.dumps(doc, sort_keys=True).encode() + b"\n"
            head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(out)}\r\n"
                    f"Connection: close\r\n\r\n").encode()
            writer.write(head if req.method == "HEAD" else head + out)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, ProtocolError,
                asyncio.LimitOverrunError, ValueError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            _close(writer)
            self.tasks.discard(task)

    # ---- life cycle ------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        lhost, lport = self.args.listen
        server = await asyncio.start_server(self.handle_client, lhost, lport, limit=STREAM_LIMIT,
                                            backlog=1024, reuse_address=True)
        chost = self.args.control_host or lhost
        control = await asyncio.start_server(self.handle_control, chost, self.args.control_port,
                                             reuse_address=True)
        pa = server.sockets[0].getsockname()
        ca = control.sockets[0].getsockname()
        print(f"slow_s3_proxy: {pa[0]}:{pa[1]} -> {self.backend_host}:{self.backend_port}, "
              f"control on {ca[0]}:{ca[1]}, {json.dumps(self.settings.as_dict())}",
              file=sys.stderr, flush=True)
        print(f"listening {pa[0]}:{pa[1]} control {ca[0]}:{ca[1]}", flush=True)
        print("ready", flush=True)
        await stop.wait()
        print("slow_s3_proxy: stopping", file=sys.stderr, flush=True)
        server.close()
        control.close()
        for w in list(self.writers):
            w.transport.abort()
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        return 0


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        p = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None
    if not 0 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}")
    return host, p


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        prog="slow_s3_proxy.py",
        description="Reverse proxy that makes a local S3 server behave like S3 over the "
                    "internet: latency, SlowDown rate limits, outages; JSON control API.")
    ap.add_argument("--listen", type=host_port, required=True, metavar="HOST:PORT",
                    help="where clients connect (port 0 = pick a free one)")
    ap.add_argument("--backend", type=host_port, required=True, metavar="HOST:PORT",
                    help="the S3 server behind the proxy, e.g. moto_server")
    ap.add_argument("--control-port", type=int, default=0,
                    help="port of the JSON control API (default: pick a free one)")
    ap.add_argument("--control-host", default=None, help="host of the control API (default: --listen's)")
    ap.add_argument("--latency-ms", type=float, default=30.0,
                    help="median added latency per request in ms; 0 disables (default 30)")
    ap.add_argument("--latency-sigma", type=float, default=0.5,
                    help="lognormal shape: 0 = constant, 0.5 = p99 about 3.2x the median (default 0.5)")
    ap.add_argument("--latency-max-ms", type=float, default=1000.0,
                    help="cap on one request's added latency in ms; 0 = no cap (default 1000)")
    ap.add_argument("--max-rps", type=int, default=0,
                    help="requests forwarded per sliding second, all methods; 0 = unlimited")
    ap.add_argument("--max-put-rps", type=int, default=0,
                    help="PUT/POST requests forwarded per sliding second; 0 = unlimited")
    ap.add_argument("--put-methods", default="PUT,POST",
                    help="methods --max-put-rps and peak_put_rps count (default PUT,POST)")
    ap.add_argument("--outage", choices=OUTAGE_MODES + ("off",), default="off",
                    help="start with an outage in this mode")
    ap.add_argument("--outage-seconds", type=float, default=0,
                    help="length of the start-up outage; 0 = until switched off")
    ap.add_argument("--seed", type=int, default=None, help="seed of the latency sampler")
    ap.add_argument("--allow-remote-backend", action="store_true",
                    help="allow a backend that is not a loopback address")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)
    if not args.allow_remote_backend and not is_loopback(args.backend[0]):
        ap.error(f"backend {args.backend[0]} is not a loopback address (--allow-remote-backend)")
    for name in ("latency_ms", "latency_sigma", "latency_max_ms", "max_rps", "max_put_rps"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(Proxy(args).run())
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
