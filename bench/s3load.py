"""A light asyncio S3 load generator: raw HTTP/1.1 keep-alive connections and a
small SigV4 signer (UNSIGNED-PAYLOAD), so that on a 2-core machine the client
costs far less per request than boto3 does and the latencies measured are the
server's, not the client's queueing.

Retries follow the AWS SDKs' "standard" mode: up to `attempts` tries on 5xx and
SlowDown, sleeping random(0, min(20, 2**n)) * base seconds in between."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import random
import time
import urllib.parse


def _sign_key(secret: str, date: str, region: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


class Signer:
    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1"):
        self.ak, self.sk, self.region = access_key, secret_key, region
        self._date, self._key = None, None

    def headers(self, method: str, host: str, path: str, extra: dict | None = None) -> dict:
        now = datetime.datetime.now(datetime.timezone.utc)
        amz = now.strftime("%Y%m%dT%H%M%SZ")
        date = amz[:8]
        if date != self._date:
            self._date, self._key = date, _sign_key(self.sk, date, self.region)
        h = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz}
        for k, v in (extra or {}).items():
            h[k.lower()] = v
        names = sorted(h)
        canon = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), "",
                           "".join(f"{n}:{h[n].strip()}\n" for n in names), ";".join(names), "UNSIGNED-PAYLOAD"])
        scope = f"{date}/{self.region}/s3/aws4_request"
        sts = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(canon.encode()).hexdigest()}"
        sig = hmac.new(self._key, sts.encode(), hashlib.sha256).hexdigest()
        h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.ak}/{scope}, "
                              f"SignedHeaders={';'.join(names)}, Signature={sig}")
        return h


class Conn:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.r = self.w = None

    async def request(self, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
        for attempt in range(2):
            if self.w is None:
                self.r, self.w = await asyncio.open_connection(self.host, self.port)
            head = f"{method} {urllib.parse.quote(path, safe='/-_.~')} HTTP/1.1\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in headers.items()) + f"content-length: {len(body)}\r\n\r\n"
            try:
                self.w.write(head.encode() + body)
                await self.w.drain()
                status_line = await self.r.readuntil(b"\r\n")
                if not status_line:
                    raise ConnectionError("closed")
                hdrs = {}
                while True:
                    line = await self.r.readuntil(b"\r\n")
                    if line == b"\r\n":
                        break
                    k, _, v = line.decode("latin-1").partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "0"))
                data = await self.r.readexactly(n) if n and method != "HEAD" else b""
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                return int(status_line.split()[1]), hdrs, data
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise ConnectionError("unreachable")

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def run_ops(endpoint: str, signer: Signer, ops: list, concurrency: int, attempts: int = 3,
                  backoff_base: float = 0.1, pairs: bool = False) -> dict:
    """ops: list of (method, path, body, extra_headers, check) where check(status, body)
    returns True for a good answer. Returns latencies (ms, of successful ops including
    retries; with pairs, of the first op of each pair only), when each of those ops
    was answered (`done_at`, seconds from the start), errors by code and elapsed
    seconds. pairs=True: a worker takes two ops at a time and runs them in order on its
    connection (a PUT and then the GET that must see it)."""
    u = urllib.parse.urlparse(endpoint)
    host_header = u.netloc
    queue = list(reversed(ops))
    lat, done_at, errors, bad = [], [], {}, 0
    t0 = time.perf_counter()

    async def one(conn, op, record):
        nonlocal bad
        method, path, body, extra, check = op
        t = time.perf_counter()
        for n in range(attempts):
            try:
                status, hdrs, data = await conn.request(method, path, signer.headers(method, host_header, path, extra), body)
            except Exception as e:  # noqa: BLE001
                status, data = 0, type(e).__name__.encode()
            if status < 500 and status != 0:
                break
            if n + 1 < attempts:
                await asyncio.sleep(random.uniform(0, min(20.0, 2 ** n)) * backoff_base * 10)
        if 200 <= status < 300:
            if record:
                now = time.perf_counter()
                lat.append((now - t) * 1000)
                done_at.append(round(now - t0, 4))
            if check and not check(status, data):
                bad += 1
        else:
            code = "conn" if status == 0 else (data.split(b"<Code>")[1].split(b"</Code>")[0].decode()
                                               if b"<Code>" in data else str(status))
            errors[code] = errors.get(code, 0) + 1

    async def worker():
        conn = Conn(u.hostname, u.port)
        while queue:
            batch = [queue.pop()]
            if pairs and queue:
                batch.append(queue.pop())
            for pos, op in enumerate(batch):
                await one(conn, op, record=(pos == 0))
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"seconds": time.perf_counter() - t0, "ok": len(lat), "done_at": sorted(done_at),
            "p50_ms": percentile(lat, 50),
            "p90_ms": percentile(lat, 90), "p99_ms": percentile(lat, 99), "max_ms": max(lat) if lat else float("nan"),
            "errors": sum(errors.values()), "errors_by_code": errors, "bad": bad}
