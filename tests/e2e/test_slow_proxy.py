"""Self-test of tests/tools/slow_s3_proxy.py, the reverse proxy that makes moto_server
behave like S3 over the internet (latency, SlowDown rate limits, outages).

It needs no Reservoir server: it starts its own moto_server and proxy (with the python
running the tests) on free 127.0.0.1 ports, so it runs, unmarked, for both targets
(RESERVOIR_E2E_TARGET=reservoir or moto) and both pythons of run.sh:

    bash tests/e2e/run.sh tests/e2e/test_slow_proxy.py
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

from conftest import (HOST, SlowS3Proxy, MiB, REPO_ROOT, MotoServer, _LIVE_PROCS, _die_with_parent,
                      delete_bucket_quietly, err_code, err_status, expect_error, headers_of,
                      make_client, md5_hex, multipart_etag, rand_bytes, sign_headers,
                      unique_bucket_name)

PROXY_PY = REPO_ROOT / "tests" / "tools" / "slow_s3_proxy.py"
CONNECTION_FAILURES = (botocore.exceptions.ConnectionClosedError,
                       botocore.exceptions.EndpointConnectionError,
                       botocore.exceptions.ConnectionError)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

class SlowProxy(SlowS3Proxy):
    """The shared proxy fixture class, plus the proxy's own peak memory."""

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0


def raw_conn(proxy: SlowProxy, timeout: float = 10) -> socket.socket:
    s = socket.create_connection((HOST, proxy.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(f, method: str = "GET"):
    """Read one response from a socket file: (status, headers (lower-case), body)."""
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    status = int(line.split()[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    if method == "HEAD" or status in (100, 204, 304):
        return status, headers, b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                return status, headers, body
            body += f.read(size + 2)[:-2]
    return status, headers, f.read(int(headers.get("content-length", "0")))


def head_bytes(px: SlowProxy, method: str, path: str, headers: dict | None = None) -> bytes:
    """A SigV4-signed request head for `path` (percent-encoded) through the proxy, signed
    for the proxy's host:port with an unsigned payload."""
    hdrs = {"Host": f"{HOST}:{px.port}", **(headers or {})}
    signed = sign_headers(method, f"http://{HOST}:{px.port}{path}", hdrs,
                          payload_hash="UNSIGNED-PAYLOAD")
    return (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items())
            + "\r\n").encode()


def chunked(data: bytes, size: int) -> bytes:
    out = [b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size]) for i in range(0, len(data), size)]
    return b"".join(out) + b"0\r\n\r\n"


def load_proxy_module():
    spec = importlib.util.spec_from_file_location("slow_s3_proxy", PROXY_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    srv = MotoServer(tmp_path_factory.mktemp("slowproxy-moto")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def proxy(moto, tmp_path_factory):
    """The proxy with its defaults (30 ms lognormal latency, no limits) before moto."""
    p = SlowProxy(moto.port, tmp_path_factory.mktemp("slowproxy") / "proxy.log").start()
    yield p
    code = p.stop()
    assert code == 0, f"proxy exit code on SIGTERM: {code}"


@pytest.fixture
def px(proxy):
    """The module's proxy, back at its defaults, outage off and stats reset."""
    proxy.post("/outage", mode="off")
    proxy.post("/config", max_rps=0, max_put_rps=0, latency_ms=30, latency_sigma=0.5,
               latency_max_ms=1000)
    proxy.post("/reset-stats")
    yield proxy
    proxy.post("/outage", mode="off")
    assert proxy.proc.poll() is None, "the proxy died"


@pytest.fixture
def s3p(px):
    """boto3 through the proxy, retries disabled."""
    return make_client(px.endpoint, max_pool=20)


@pytest.fixture
def pbucket(moto, request):
    """A fresh bucket (made directly on moto), removed afterwards."""
    direct = moto.client()
    name = unique_bucket_name(request.node.name.replace("test_", ""))
    direct.create_bucket(Bucket=name)
    yield name
    delete_bucket_quietly(direct, name)


# --------------------------------------------------------------------------
# Pass-through
# --------------------------------------------------------------------------

def test_put_get_head_list_byte_exact(px, s3p, moto, pbucket):
    direct = moto.client()
    objects = {"empty": b"", "one": b"x", "ten-kib": rand_bytes(10 * 1024),
               "odd/1mib+1": rand_bytes(MiB + 1), "sp ace+plus%pct/ü.txt": rand_bytes(777)}
    for key, data in objects.items():
        resp = s3p.put_object(Bucket=pbucket, Key=key, Body=data, Metadata={"k": "v"})
        assert resp["ETag"] == f'"{md5_hex(data)}"'
    for key, data in objects.items():
        got = s3p.get_object(Bucket=pbucket, Key=key)
        assert got["Body"].read() == data
        assert got["ContentLength"] == len(data)
        assert got["Metadata"] == {"k": "v"}
        assert direct.get_object(Bucket=pbucket, Key=key)["Body"].read() == data  # really stored
        head = s3p.head_object(Bucket=pbucket, Key=key)
        assert head["ContentLength"] == len(data)
        assert head["ETag"] == f'"{md5_hex(data)}"'
    rng = s3p.get_object(Bucket=pbucket, Key="ten-kib", Range="bytes=100-199")
    assert rng["Body"].read() == objects["ten-kib"][100:200]
    listed = s3p.list_objects_v2(Bucket=pbucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(objects)
    assert {o["Key"]: o["Size"] for o in listed} == {k: len(v) for k, v in objects.items()}
    assert [o["Key"] for o in s3p.list_objects_v2(Bucket=pbucket, Prefix="odd/")["Contents"]] == ["odd/1mib+1"]
    # errors pass through too, HEAD's without a body
    expect_error(s3p.get_object, Bucket=pbucket, Key="missing", code="NoSuchKey", status=404)
    expect_error(s3p.head_object, Bucket=pbucket, Key="missing", status=404)
    s3p.delete_object(Bucket=pbucket, Key="one")
    expect_error(s3p.head_object, Bucket=pbucket, Key="one", status=404)

    st = px.stats()
    n = st["requests"]
    assert st["forwarded"] == n and st["slowdown_503"] == 0
    assert st["by_method"]["PUT"] == len(objects) and st["by_method"]["HEAD"] == len(objects) + 2
    assert st["by_status"].get("404") == 3
    # keep-alive towards the client even though moto closes after every response
    assert st["connections"] <= 3 < n
    assert st["latency_added_total_s"] > 0.005 * n  # the default latency is on


def test_multipart_3x5mib(px, s3p, pbucket):
    parts = [rand_bytes(5 * MiB) for _ in range(3)]
    uid = s3p.create_multipart_upload(Bucket=pbucket, Key="mp")["UploadId"]
    etags = []
    for i, p in enumerate(parts, 1):
        r = s3p.upload_part(Bucket=pbucket, Key="mp", UploadId=uid, PartNumber=i, Body=p)
        assert r["ETag"] == f'"{md5_hex(p)}"'
        etags.append(r["ETag"])
    done = s3p.complete_multipart_upload(Bucket=pbucket, Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})
    assert done["ETag"] == f'"{multipart_etag(parts)}"'
    body = s3p.get_object(Bucket=pbucket, Key="mp")["Body"].read()
    assert hashlib.md5(body).hexdigest() == hashlib.md5(b"".join(parts)).hexdigest()
    assert s3p.head_object(Bucket=pbucket, Key="mp")["ContentLength"] == 15 * MiB


def test_raw_chunked_expect_head_keepalive(px, pbucket):
    """Transfer-Encoding: chunked and Expect: 100-continue requests, HEAD without a body,
    all on one keep-alive connection (moto does not check signatures)."""
    px.post("/config", latency_ms=0)
    data = rand_bytes(3 * MiB + 5)
    s = raw_conn(px)
    f = s.makefile("rb")
    try:
        # chunked body, odd chunk sizes
        s.sendall(head_bytes(px, "PUT", f"/{pbucket}/chunked", {"Transfer-Encoding": "chunked"})
                  + chunked(data, 100_001))
        status, hdrs, _ = read_response(f, "PUT")
        assert status == 200, hdrs
        # Expect: 100-continue: nothing is sent before the 100
        s.sendall(head_bytes(px, "PUT", f"/{pbucket}/expect", {"Content-Length": str(len(data)),
                                                                "Expect": "100-continue"}))
        status, _, _ = read_response(f)
        assert status == 100
        s.sendall(data)
        status, hdrs, _ = read_response(f, "PUT")
        assert status == 200 and hdrs["etag"] == f'"{md5_hex(data)}"'
        for key in ("chunked", "expect"):
            s.sendall(head_bytes(px, "HEAD", f"/{pbucket}/{key}"))
            status, hdrs, _ = read_response(f, "HEAD")
            assert status == 200 and int(hdrs["content-length"]) == len(data)
            s.sendall(head_bytes(px, "GET", f"/{pbucket}/{key}"))
            status, hdrs, body = read_response(f)
            assert status == 200 and body == data and "close" not in hdrs.get("connection", "")
    finally:
        f.close()
        s.close()
    assert px.stats()["connections"] == 1


# --------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------

def burst(fn, n: int, threads: int):
    """Run fn(i) n times on `threads` threads; returns (successes, ClientErrors, others)."""
    ok, errs, other = [], [], []
    lock = threading.Lock()

    def one(i):
        try:
            r = fn(i)
            with lock:
                ok.append(r)
        except ClientError as e:
            with lock:
                errs.append(e)
        except Exception as e:  # noqa: BLE001
            with lock:
                other.append(e)

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, range(n)))
    return ok, errs, other


def test_put_rate_limit_slowdown(px, pbucket):
    limit = 10
    px.post("/config", max_put_rps=limit, latency_ms=5, latency_sigma=0.5)
    # retries off: every 503 reaches the caller (legacy {"max_attempts": 0} means the same)
    client = make_client(px.endpoint, max_pool=16)
    body = rand_bytes(10 * 1024)
    t0 = time.time()
    ok, errs, other = burst(lambda i: client.put_object(Bucket=pbucket, Key=f"b/{i}", Body=body), 80, 12)
    took = time.time() - t0
    assert not other, other[:3]
    assert errs, f"no SlowDown in a burst of 80 PUTs within {took:.2f}s at {limit}/s"
    for e in errs:
        assert err_code(e) == "SlowDown" and err_status(e) == 503, e.response
        assert headers_of(e.response).get("retry-after") == "1", e.response
    st = px.stats()
    assert st["peak_put_rps"] <= limit + 1, st["peak_put_rps"]
    assert max(st["per_second_puts"]) <= limit + 1, st["per_second_puts"][-5:]
    assert len(st["per_second_puts"]) == 600
    assert st["slowdown_503"] == len(errs) and st["by_status"]["503"] == len(errs)
    assert st["forwarded_by_method"]["PUT"] == len(ok)
    assert sum(st["per_second_puts"]) == len(ok)
    # the admitted ones really landed; GETs are not limited by max_put_rps
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=pbucket).get("Contents", [])}
    assert len(keys) == len(ok) and keys
    ok_g, errs_g, _ = burst(lambda i: client.head_object(Bucket=pbucket, Key=sorted(keys)[0]), 30, 8)
    assert not errs_g and len(ok_g) == 30


def test_total_rate_limit_and_runtime_change(px, pbucket):
    s3 = make_client(px.endpoint, max_pool=16)
    s3.put_object(Bucket=pbucket, Key="k", Body=b"v")
    px.post("/config", max_rps=8, latency_ms=0)
    time.sleep(1.05)  # the limiter's window still holds the requests of the last second
    px.post("/reset-stats")
    ok, errs, other = burst(lambda i: s3.get_object(Bucket=pbucket, Key="k")["Body"].read(), 40, 10)
    assert not other and errs and ok
    assert all(err_code(e) == "SlowDown" for e in errs)
    # HEAD's 503 carries no body
    e = burst(lambda i: s3.head_object(Bucket=pbucket, Key="k"), 30, 10)[1]
    assert e and all(err_status(x) == 503 for x in e)
    assert px.stats()["peak_rps"] <= 9
    # lifted at run time
    px.post("/config", max_rps=0)
    time.sleep(1.05)
    ok, errs, other = burst(lambda i: s3.head_object(Bucket=pbucket, Key="k"), 30, 10)
    assert not errs and not other


def test_slowdown_drains_body_or_closes(px, pbucket):
    """A 503 on a PUT whose body is on its way drains the body and keeps the connection;
    one held back by Expect: 100-continue gets no 100 and Connection: close."""
    px.post("/config", max_put_rps=1, latency_ms=0)
    time.sleep(1.05)
    body = rand_bytes(2 * MiB)
    s = raw_conn(px)
    f = s.makefile("rb")
    try:
        s.sendall(head_bytes(px, "PUT", f"/{pbucket}/a", {"Content-Length": str(len(body))}) + body)
        assert read_response(f, "PUT")[0] == 200
        s.sendall(head_bytes(px, "PUT", f"/{pbucket}/b", {"Content-Length": str(len(body))}) + body)
        status, hdrs, xml = read_response(f, "PUT")
        assert status == 503 and hdrs["retry-after"] == "1"
        assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                              b"<Message>Please reduce your request rate.</Message><RequestId>")
        assert "close" not in hdrs.get("connection", "")
        # same connection still in sync: a chunked PUT rejected too, then a GET
        s.sendall(head_bytes(px, "PUT", f"/{pbucket}/c", {"Transfer-Encoding": "chunked"})
                  + chunked(body, 65536))
        assert read_response(f, "PUT")[0] == 503
        s.sendall(head_bytes(px, "GET", f"/{pbucket}/a"))
        status, _, got = read_response(f)
        assert status == 200 and got == body
    finally:
        f.close()
        s.close()
    s = raw_conn(px)
    f = s.makefile("rb")
    try:
        s.sendall(head_bytes(px, "PUT", f"/{pbucket}/d", {"Content-Length": str(len(body)),
                                                           "Expect": "100-continue"}))
        status, hdrs, xml = read_response(f, "PUT")
        assert status == 503 and hdrs["connection"] == "close" and b"SlowDown" in xml
        assert f.read() == b""  # closed
    finally:
        f.close()
        s.close()


# --------------------------------------------------------------------------
# Outages
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["refuse", "error500", "reset"])
def test_outage_modes(px, s3p, pbucket, mode):
    px.post("/config", latency_ms=0)
    s3p.put_object(Bucket=pbucket, Key="k", Body=b"before")  # a pooled keep-alive connection
    assert px.post("/outage", mode=mode)["mode"] == mode
    for _ in range(2):  # the pooled connection, then a new one
        if mode == "error500":
            expect_error(s3p.put_object, Bucket=pbucket, Key="k", Body=b"during",
                         code="InternalError", status=500)
            expect_error(s3p.head_object, Bucket=pbucket, Key="k", status=500)
        else:
            with pytest.raises(CONNECTION_FAILURES):
                s3p.put_object(Bucket=pbucket, Key="k", Body=b"during")
            with pytest.raises(CONNECTION_FAILURES):
                s3p.get_object(Bucket=pbucket, Key="k")
    # raw view of the same
    s = raw_conn(px)
    try:
        if mode == "refuse":
            assert s.recv(100) == b""  # closed at once, before any request
        else:
            s.sendall(head_bytes(px, "GET", f"/{pbucket}/k"))
            if mode == "reset":
                with pytest.raises(ConnectionResetError):
                    while s.recv(100):
                        pass
            else:
                f = s.makefile("rb")
                status, _, xml = read_response(f)
                f.close()
                assert status == 500 and b"<Code>InternalError</Code>" in xml
    finally:
        s.close()
    st = px.stats()
    assert st["outage"]["mode"] == mode and st["forwarded"] == 1
    px.post("/outage", mode="off")
    assert s3p.get_object(Bucket=pbucket, Key="k")["Body"].read() == b"before"
    s3p.put_object(Bucket=pbucket, Key="k", Body=b"after")
    assert s3p.get_object(Bucket=pbucket, Key="k")["Body"].read() == b"after"


def test_outage_ends_by_itself(px, s3p, pbucket):
    px.post("/config", latency_ms=0)
    doc = px.post("/outage", mode="error500", seconds=1)
    assert doc["mode"] == "error500" and 0 < doc["seconds_left"] <= 1
    expect_error(s3p.list_objects_v2, Bucket=pbucket, status=500)
    time.sleep(1.2)
    assert px.stats()["outage"]["mode"] == "off"
    s3p.list_objects_v2(Bucket=pbucket)


# --------------------------------------------------------------------------
# Latency, control API, large bodies, shutdown
# --------------------------------------------------------------------------

def test_latency_distribution_and_setting(px, s3p, pbucket):
    mod = load_proxy_module()

    class A:
        latency_ms, latency_sigma, latency_max_ms = 30, 0.5, 1000
        max_rps = max_put_rps = 0
        put_methods, seed = "PUT,POST", 7
    st = mod.Settings(A)
    samples = sorted(st.sample_latency() for _ in range(4000))
    median = samples[len(samples) // 2]
    assert 0.026 < median < 0.034, median
    assert samples[int(len(samples) * 0.99)] > 2 * median  # a long tail
    assert samples[-1] <= 1.0
    A.latency_ms = 0
    assert mod.Settings(A).sample_latency() == 0

    # a constant 80 ms, then none
    s3p.head_bucket(Bucket=pbucket)
    px.post("/config", latency_ms=80, latency_sigma=0)
    t = time.monotonic()
    for _ in range(5):
        s3p.head_bucket(Bucket=pbucket)
    slow = (time.monotonic() - t) / 5
    px.post("/config", latency_ms=0)
    t = time.monotonic()
    for _ in range(5):
        s3p.head_bucket(Bucket=pbucket)
    fast = (time.monotonic() - t) / 5
    assert slow >= 0.08 and fast < slow - 0.05, (slow, fast)


def test_control_api(px):
    st = px.stats()
    for key in ("by_method", "by_status", "forwarded", "slowdown_503", "peak_rps", "peak_put_rps",
                "per_second_puts", "per_second_requests", "config", "outage"):
        assert key in st
    assert st["config"]["latency_ms"] == 30 and st["outage"]["mode"] == "off"
    assert px.ctl("POST", "/outage", mode="sideways")[0] == 400
    assert px.ctl("POST", "/config", max_rps="many")[0] == 400
    assert px.ctl("POST", "/config", bogus=1)[0] == 400
    assert px.ctl("GET", "/nope")[0] == 404
    assert px.ctl("POST", "/stats")[0] == 405
    assert px.ctl("GET", "/reset-stats")[0] == 405
    assert px.post("/config", max_put_rps=7)["max_put_rps"] == 7
    assert px.ctl("GET", "/config")[1]["max_put_rps"] == 7


def test_stream_100mib_put_get(px, s3p, pbucket):
    px.post("/config", latency_ms=0)
    data = os.urandom(100 * MiB)
    digest = md5_hex(data)
    # a file-like body: boto3 sends Expect: 100-continue
    resp = s3p.put_object(Bucket=pbucket, Key="big", Body=io.BytesIO(data))
    assert resp["ETag"] == f'"{digest}"'
    got = s3p.get_object(Bucket=pbucket, Key="big")
    h = hashlib.md5()
    n = 0
    for chunk in got["Body"].iter_chunks(MiB):
        h.update(chunk)
        n += len(chunk)
    assert n == len(data) and h.hexdigest() == digest
    del data
    # streamed, never buffered whole: the proxy's peak RSS stays far below 100 MiB
    rss_mib = px.peak_rss_kib() / 1024
    print(f"proxy peak RSS {rss_mib:.1f} MiB")
    assert rss_mib < 60, f"proxy peak RSS {rss_mib:.0f} MiB"
    s3p.delete_object(Bucket=pbucket, Key="big")


class _Sink(threading.Thread):
    """A fast backend: swallows request bodies, answers GET with `size` bytes."""

    def __init__(self, size: int):
        super().__init__(daemon=True)
        self.payload = memoryview(os.urandom(size))
        self.ls = socket.socket()
        self.ls.bind((HOST, 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]

    def run(self):
        with contextlib.suppress(OSError):
            while True:
                c, _ = self.ls.accept()
                threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        with contextlib.suppress(OSError, ValueError), c, c.makefile("rb") as f:
            while True:
                line = f.readline()
                if not line:
                    return
                hdrs = {}
                while (h := f.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                left = int(hdrs.get("content-length", 0))
                while left:
                    left -= len(f.read(min(left, MiB)))
                if line.startswith(b"GET /chunked"):  # a chunked response with a trailer
                    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              + chunked(self.payload[:3 * MiB + 7].tobytes(), 65536)[:-2]
                              + b"x-trailer: 1\r\n\r\n")
                elif line.startswith(b"GET"):
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.payload))
                    c.sendall(self.payload)
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def test_proxy_throughput_not_a_bottleneck(tmp_path):
    """Without moto in the way: 100 MiB each way at > 100 MB/s, and hundreds of small
    PUTs per second."""
    sink = _Sink(100 * MiB)
    sink.start()
    p = SlowProxy(sink.port, tmp_path / "proxy.log", "--latency-ms", "0").start()
    try:
        s = raw_conn(p, timeout=30)
        f = s.makefile("rb")
        try:
            t = time.monotonic()
            s.sendall(b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(sink.payload))
            s.sendall(sink.payload)
            assert read_response(f, "PUT")[0] == 200
            put_mbs = len(sink.payload) / (time.monotonic() - t) / 1e6
            t = time.monotonic()
            s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
            status, hdrs, body = read_response(f)
            get_mbs = len(sink.payload) / (time.monotonic() - t) / 1e6
            assert status == 200 and len(body) == len(sink.payload)
            del body
            s.sendall(b"GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n")
            status, hdrs, body = read_response(f)
            assert status == 200 and hdrs["transfer-encoding"] == "chunked"
            assert body == sink.payload[:3 * MiB + 7]
            s.sendall(b"PUT /again HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
            assert read_response(f, "PUT")[0] == 200  # still in step on the same connection
        finally:
            f.close()
            s.close()
        print(f"proxy alone: PUT {put_mbs:.0f} MB/s, GET {get_mbs:.0f} MB/s")
        assert put_mbs > 100 and get_mbs > 100, (put_mbs, get_mbs)

        small = rand_bytes(10 * 1024)
        count = [0]
        stop_at = time.monotonic() + 1.5

        def worker():
            c = http.client.HTTPConnection(HOST, p.port, timeout=10)
            while time.monotonic() < stop_at:
                c.request("PUT", "/small", body=small)
                r = c.getresponse()
                r.read()
                assert r.status == 200
                count[0] += 1
            c.close()
        ts = [threading.Thread(target=worker) for _ in range(8)]
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        rps = count[0] / 1.5
        print(f"proxy alone: {rps:.0f} PUT/s of 10 KiB on 8 connections")
        assert rps > 300, f"{rps:.0f} PUT/s of 10 KiB"
        assert p.stats()["peak_put_rps"] >= 300
    finally:
        code = p.stop()
        sink.ls.close()
    assert code == 0


def test_sigterm_with_open_connections(moto, tmp_path):
    p = SlowProxy(moto.port, tmp_path / "proxy.log", "--latency-ms", "0").start()
    idle = raw_conn(p)
    busy = raw_conn(p)
    busy.sendall("PUT /x/y HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n".encode() + b"z" * 1000)
    time.sleep(0.2)
    t = time.monotonic()
    code = p.stop()
    assert code == 0 and time.monotonic() - t < 5
    idle.close()
    busy.close()
