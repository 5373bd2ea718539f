"""The HTTPS listener (tls_listen), streaming of a large object in bounded memory, and
the connection limits: header_timeout (slowloris), idle_timeout (idle keep-alive and
stalled bodies) and max_connections.

Every test starts its own Reservoir through `reservoir_factory` with the [server]
settings it needs, so the whole module is reservoir-only.

Not here: a header over max_header_bytes (test_bad_input.py::test_oversized_header
already sends 64 KiB and 1 MiB headers against the 16 KiB default).

Environment: RESERVOIR_E2E_BIG_MIB (default 1024) sets the size of the large object.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import os
import random
import select
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import botocore
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import SSLError

from conftest import (HOST, MiB, delete_bucket_quietly, make_client, md5_hex,
                      multipart_etag, rand_bytes, raw_request, sign_headers, unique_bucket_name)
from test_awscli import CLIS, _clean_env

pytestmark = pytest.mark.reservoir_only

BIG_MIB = int(os.environ.get("RESERVOIR_E2E_BIG_MIB", "1024"))
RSS_LIMIT = 300 * 1000 * 1000  # bytes: the server's peak RSS while streaming the big object
CLOSE_BOUND = 10.0             # seconds: generous upper bound for "the server closes it"


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def proc_status_bytes(pid: int, field: str) -> int:
    """A kB field of /proc/<pid>/status (VmHWM, VmRSS) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def wait_closed(sock: socket.socket, bound: float = CLOSE_BOUND, drip: bytes | None = None,
                drip_every: float = 0.5, between=None) -> tuple[float, bytes]:
    """Wait until the peer closes `sock` (EOF or reset); returns (seconds, bytes received).
    With drip, send it one byte at a time every drip_every seconds meanwhile (slowloris);
    `between` is called after each wait slice (e.g. to check other clients are served).
    Fails if the socket is still open after `bound` seconds."""
    start = time.monotonic()
    got = b""
    i = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed > bound:
            pytest.fail(f"connection still open after {elapsed:.1f}s (bound {bound}s); "
                        f"received {got[:200]!r}")
        if drip is not None:
            try:
                sock.sendall(drip[i % len(drip):i % len(drip) + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start, got
            i += 1
        readable, _, _ = select.select([sock], [], [], drip_every)
        if readable:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - start, got
            except ssl.SSLError:
                return time.monotonic() - start, got
            if not data:
                return time.monotonic() - start, got
            got += data
        if between is not None:
            between()


def still_open(sock: socket.socket, wait: float = 0.2) -> bool:
    """True if the peer has neither closed nor reset the (idle) socket."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return True
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


def signed_get_bytes(port: int, path: str = "/") -> bytes:
    hdrs = sign_headers("GET", f"http://{HOST}:{port}{path}")
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answers(srv, timeout: float = 10) -> bool:
    try:
        return raw_request(srv.endpoint, "GET", "/", timeout=timeout).status == 200
    except OSError:
        return False


def wait_until_answers(srv, bound: float = CLOSE_BOUND) -> float:
    start = time.monotonic()
    while not answers(srv, timeout=2):
        if time.monotonic() - start > bound:
            pytest.fail(f"server did not answer a normal request within {bound}s; log:\n"
                        f"{srv.log_tail()}")
        time.sleep(0.2)
    return time.monotonic() - start


def assert_up(srv):
    assert srv.alive(), f"server exited with {srv.proc.returncode}; log:\n{srv.log_tail()}"
    assert answers(srv), f"server no longer answers; log:\n{srv.log_tail()}"


def b64crc32(data: bytes) -> str:
    return base64.b64encode(struct.pack(">I", zlib.crc32(data) & 0xFFFFFFFF)).decode()


@contextlib.contextmanager
def recorded_requests(client):
    """Record (operation, headers) of every request the client sends, as sent."""
    seen: list[tuple[str, dict]] = []

    def record(request, event_name=None, **_):
        op = (event_name or "").rsplit(".", 1)[-1]
        hdrs = {}
        for k, v in request.headers.items():
            hdrs[k.lower()] = v.decode() if isinstance(v, bytes) else str(v)
        seen.append((op, hdrs))

    client.meta.events.register("before-send.s3", record)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-send.s3", record)


def file_md5(p: Path) -> str:
    h = hashlib.md5()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# The test PKI (`pki`: ca, other_ca, cert, key) is the session fixture in conftest.py.


@pytest.fixture(scope="module")
def tls_server(reservoir_factory, pki):
    """Reservoir with both the plain S3 listener and an HTTPS one (tls_endpoint)."""
    return reservoir_factory(tls=(pki.cert, pki.key))


@pytest.fixture(scope="module")
def tls_s3(tls_server, pki):
    # a short read timeout: a response that stalls fails in seconds, not minutes
    return make_client(tls_server.tls_endpoint, verify=str(pki.ca), read_timeout=15)


@pytest.fixture
def tls_bucket(tls_server, tls_s3, request):
    name = unique_bucket_name(request.node.name.split("[")[0].replace("test_", ""))
    tls_s3.create_bucket(Bucket=name)
    yield name
    delete_bucket_quietly(tls_s3, name)
    assert tls_server.alive(), f"the TLS server died; log:\n{tls_server.log_tail()}"


# --------------------------------------------------------------------------
# 1. TLS
# --------------------------------------------------------------------------

BOTOCORE_VERSION = tuple(int(x) for x in botocore.__version__.split(".")[:2])


def _expected_put_body() -> tuple[str, str]:
    """(x-amz-content-sha256, integrity header) of boto3's PutObject/UploadPart over https.
    botocore >= 1.36 computes a CRC32 by default and, over TLS, sends it as the trailer of an
    unsigned aws-chunked body; older ones send an unsigned body with a Content-MD5 header."""
    if BOTOCORE_VERSION >= (1, 36):
        return "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-trailer"
    return "UNSIGNED-PAYLOAD", "content-md5"


def _check_sent_body(op: str, h: dict) -> None:
    payload_hash, integrity = _expected_put_body()
    assert h.get("x-amz-content-sha256") == payload_hash, (op, h)
    assert integrity in h, (op, h)
    if payload_hash.startswith("STREAMING-"):
        assert "aws-chunked" in h.get("content-encoding", ""), (op, h)
        assert h["x-amz-trailer"].startswith("x-amz-checksum-"), (op, h)


def test_tls_put_get_small(tls_server, tls_s3, tls_bucket):
    data = rand_bytes(1024, seed="tls-small")
    with recorded_requests(tls_s3) as seen:
        put = tls_s3.put_object(Bucket=tls_bucket, Key="small.bin", Body=data)
    assert put["ETag"] == f'"{md5_hex(data)}"'
    sent = [h for op, h in seen if op == "PutObject"]
    assert len(sent) == 1, seen
    _check_sent_body("PutObject", sent[0])
    trailer = _expected_put_body()[1] == "x-amz-trailer"

    got = tls_s3.get_object(Bucket=tls_bucket, Key="small.bin")
    assert got["Body"].read() == data
    assert got["ContentLength"] == 1024  # the aws-chunked framing is not stored
    head = tls_s3.head_object(Bucket=tls_bucket, Key="small.bin", ChecksumMode="ENABLED")
    assert head["ETag"] == f'"{md5_hex(data)}"'
    assert "ContentEncoding" not in head or "aws-chunked" not in head["ContentEncoding"], head
    if trailer and "ChecksumCRC32" in head:  # the trailer's checksum, if kept, must be right
        assert head["ChecksumCRC32"] == b64crc32(data), head


def reproducible_blocks(size: int, seed: str, block: int = MiB):
    """`size` pseudo-random bytes as 1 MiB blocks, each made from (seed, block number) when
    it is needed: the test never holds more than one block."""
    for i in range((size + block - 1) // block):
        yield random.Random(f"{seed}/{i}").randbytes(min(block, size - i * block))


class HashingSink(io.RawIOBase):
    """A write-only sink for download_fileobj that keeps the MD5 (in order) and the size."""

    def __init__(self):
        self.h, self.n = hashlib.md5(), 0

    def writable(self):
        return True

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return len(b)


@pytest.mark.parametrize("how", ["put_object", "upload_fileobj"])
def test_tls_20mib_round_trip(tls_server, tls_s3, tls_bucket, how):
    size = 20 * MiB
    data = rand_bytes(size, seed=f"tls-20-{how}")
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    with recorded_requests(tls_s3) as seen:
        if how == "put_object":  # one PUT of 20 MiB: many aws-chunked chunks with boto3 1.43
            tls_s3.put_object(Bucket=tls_bucket, Key="big.bin", Body=data)
            want_ops, etag = {"PutObject"}, md5_hex(data)
        else:  # multipart: 8 + 8 + 4 MiB parts
            tls_s3.upload_fileobj(io.BytesIO(data), tls_bucket, "big.bin", Config=cfg)
            want_ops = {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
            etag = multipart_etag([data[:8 * MiB], data[8 * MiB:16 * MiB], data[16 * MiB:]])
    ops = {op for op, _ in seen}
    assert ops == want_ops, ops
    for op, h in seen:
        if op in ("PutObject", "UploadPart"):
            _check_sent_body(op, h)
    head = tls_s3.head_object(Bucket=tls_bucket, Key="big.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == f'"{etag}"'
    assert md5_hex(tls_s3.get_object(Bucket=tls_bucket, Key="big.bin")["Body"].read()) == md5_hex(data)
    # ranged, parallel download over TLS
    sink = HashingSink()
    tls_s3.download_fileobj(tls_bucket, "big.bin", sink, Config=cfg)
    assert sink.n == size
    assert sink.h.hexdigest() == md5_hex(data)
    assert tls_s3.get_object(Bucket=tls_bucket, Key="big.bin", Range="bytes=1000-1999")["Body"].read() \
        == data[1000:2000]


def _tls_get(srv, pki, path: str, timeout: float = 10) -> tuple[bytes, bytes]:
    """One signed GET on a fresh TLS connection; returns (response head, body) as received
    within `timeout` (a short body means the server stopped sending)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection((HOST, srv.tls_port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            s.sendall(signed_get_bytes(srv.tls_port, path))
            data = b""
            deadline = time.monotonic() + timeout
            while True:
                head, sep, body = data.partition(b"\r\n\r\n")
                if sep:
                    length = [int(v) for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n"))
                              if k.strip().lower() == b"content-length"]
                    if length and len(body) >= length[0]:
                        return head, body
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    chunk = s.recv(1 << 20)
                except (socket.timeout, ssl.SSLError, OSError):
                    chunk = b""
                if not chunk:
                    head, _, body = data.partition(b"\r\n\r\n")
                    return head, body
                data += chunk


# Sizes around the 16 KiB TLS record size (a response head is ~300 bytes).
@pytest.mark.parametrize("size", [1024, 16000, 16 * 1024, 16 * 1024 + 1, 64 * 1024, MiB + 1],
                         ids=["1KiB", "16000", "16KiB", "16KiB+1", "64KiB", "1MiB+1"])
def test_tls_get_body_sizes(tls_server, tls_s3, tls_bucket, pki, size):
    """GET over TLS returns the whole body (raw TLS client, so the failure shows what arrived)."""
    data = rand_bytes(size, seed=f"tls-size-{size}")
    tls_server.client().put_object(Bucket=tls_bucket, Key="obj", Body=data)
    head, body = _tls_get(tls_server, pki, f"/{tls_bucket}/obj")
    assert head.startswith(b"HTTP/1.1 200"), head[:300]
    assert len(body) == size, (f"{size}-byte object over TLS: got {len(body)} body bytes, then the "
                               f"server sent nothing more for 10s")
    assert body == data


def test_tls_large_listing(tls_server, tls_s3, tls_bucket):
    """A ListObjectsV2 answer bigger than one TLS record (16 KiB of XML)."""
    plain = tls_server.client()
    keys = sorted(f"listing/{i:04d}-" + "k" * 150 for i in range(150))
    for k in keys:
        plain.put_object(Bucket=tls_bucket, Key=k, Body=b"x")
    page = tls_s3.list_objects_v2(Bucket=tls_bucket, Prefix="listing/")
    assert [o["Key"] for o in page["Contents"]] == keys


def test_tls_same_object_seen_over_http(tls_server, tls_s3, tls_bucket):
    """Both listeners serve the same store."""
    data = b"written over https"
    tls_s3.put_object(Bucket=tls_bucket, Key="k", Body=data)
    plain = tls_server.client()
    assert plain.get_object(Bucket=tls_bucket, Key="k")["Body"].read() == data
    plain.put_object(Bucket=tls_bucket, Key="k2", Body=b"written over http")
    assert tls_s3.get_object(Bucket=tls_bucket, Key="k2")["Body"].read() == b"written over http"


def test_tls_keep_alive_raw_requests(tls_server, tls_s3, tls_bucket, pki):
    """Several hand-signed requests on one TLS connection (keep-alive)."""
    tls_s3.put_object(Bucket=tls_bucket, Key="k", Body=b"0123456789")
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    conn = http.client.HTTPSConnection(HOST, tls_server.tls_port, context=ctx, timeout=30)
    first_sock = None
    try:
        for i in range(3):
            path = f"/{tls_bucket}/k"
            hdrs = sign_headers("GET", f"https://{HOST}:{tls_server.tls_port}{path}",
                                {"Range": f"bytes={i}-{i + 2}"})
            conn.request("GET", path, headers=hdrs)
            r = conn.getresponse()
            assert r.status == 206, (r.status, r.read())
            assert r.read() == b"0123456789"[i:i + 3]
            assert not r.will_close
            first_sock = first_sock or conn.sock
            assert conn.sock is first_sock  # http.client did not have to reconnect
    finally:
        conn.close()


def test_tls_shutdown_timeouts_beside_uploads(reservoir_factory, pki):
    """Clients that never answer the server's TLS close_notify: after "Connection: close" the
    server sends its close_notify, waits 2 s for the client's, then closes the socket from its
    stream's timer, on whichever network thread is free, while multipart uploads open part
    files. Before every connection ran on a strand of its own, that close could run beside
    the session's own close of the same descriptor; the second close() then closed a number
    the OS had just given to a part file (UploadPart answered 500 "write cache file: Bad file
    descriptor"). Every e2e server runs with the double-close check of conftest
    (CLOSE_CHECK_LIB), which fails this test on any close() of a descriptor not open."""
    srv = reservoir_factory(tls=(pki.cert, pki.key))
    s3 = make_client(srv.endpoint)
    bucket = unique_bucket_name("tls-shutdown")
    s3.create_bucket(Bucket=bucket)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    stop = threading.Event()
    failures: list[str] = []
    part = os.urandom(MiB)
    done = [0]

    def upload(n: int):
        while not stop.is_set():
            key = f"mp-{n}"
            try:
                up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
                etags = [s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=i,
                                        Body=part)["ETag"] for i in (1, 2)]
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up)
                assert all(etags)
                done[0] += 1
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                failures.append(repr(e))
                return

    request = signed_get_bytes(srv.tls_port).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    uploaders = [threading.Thread(target=upload, args=(n,)) for n in range(3)]
    for t in uploaders:
        t.start()
    try:
        for _ in range(4):
            held = []
            for _ in range(60):
                s = ctx.wrap_socket(socket.create_connection((HOST, srv.tls_port), timeout=10),
                                    server_hostname=HOST)
                s.sendall(request)
                held.append(s)
            for s in held:  # read the answer up to the server's close_notify, never reply to it
                got = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                assert got.startswith(b"HTTP/1.1 200"), got[:200]
            time.sleep(2.5)  # past the server's 2 s wait for our close_notify
            for s in held:
                s.close()
    finally:
        stop.set()
        for t in uploaders:
            t.join(60)
    assert not failures, failures
    assert done[0] > 0
    assert_up(srv)
    s3.delete_bucket(Bucket=bucket)


def test_tls_certificate_and_names(tls_server, pki):
    """The server presents the configured certificate; it verifies for 127.0.0.1 (IP SAN)
    and localhost (DNS SAN) against the test CA."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    for name in ("127.0.0.1", "localhost"):
        with socket.create_connection((HOST, tls_server.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as s:
                assert s.version() in ("TLSv1.2", "TLSv1.3")
                s.sendall(signed_get_bytes(tls_server.tls_port))
                head = s.recv(4096)
                assert head.startswith(b"HTTP/1.1 200"), head[:200]


def test_tls_wrong_ca_fails_verification(tls_server, pki, tls_s3):
    bad = make_client(tls_server.tls_endpoint, verify=str(pki.other_ca))
    with pytest.raises(SSLError):
        bad.list_buckets()
    ctx = ssl.create_default_context(cafile=str(pki.other_ca))
    with socket.create_connection((HOST, tls_server.tls_port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname=HOST)
    # the failed handshakes did not harm the server
    tls_s3.list_buckets()
    assert_up(tls_server)


def test_plain_http_on_tls_port_is_closed(tls_server, tls_s3):
    port = tls_server.tls_port
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(signed_get_bytes(port))
        secs, got = wait_closed(sock)
    assert not got.startswith(b"HTTP/"), got[:200]  # at most a TLS alert, never an answer
    # a silent TCP client and a half ClientHello on the TLS port block nobody
    silent = socket.create_connection((HOST, port), timeout=10)
    half = socket.create_connection((HOST, port), timeout=10)
    try:
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        for _ in range(3):
            tls_s3.list_buckets()
        assert answers(tls_server)
    finally:
        silent.close()
        half.close()
    assert_up(tls_server)


@pytest.fixture(params=CLIS)
def aws_tls(request, tls_server, pki):
    """Run an aws CLI against the HTTPS endpoint, trusting the test CA via AWS_CA_BUNDLE."""
    path = request.param
    env = _clean_env()
    env["AWS_CA_BUNDLE"] = str(pki.ca)

    def run(*args, check=True, ca=None):
        e = dict(env)
        if ca is not None:
            e["AWS_CA_BUNDLE"] = str(ca)
        argv = [path, "--endpoint-url", tls_server.tls_endpoint, "--cli-read-timeout", "15",
                *map(str, args)]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=e)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{' '.join(argv)} did not finish within 90s (killed); "
                        f"stderr: {(exc.stderr or b'')[-2000:]!r}")
        if check and out.returncode != 0:
            pytest.fail(f"{' '.join(argv)} exited {out.returncode}\nstdout: {out.stdout[-3000:]}\n"
                        f"stderr: {out.stderr[-3000:]}")
        return out
    return run


@pytest.mark.parametrize("size", [1024, 20 * MiB], ids=["1KiB", "20MiB"])
def test_awscli_cp_over_https(aws_tls, tls_s3, tls_bucket, tmp_path, size):
    src = tmp_path / "up.bin"
    src.write_bytes(rand_bytes(size, seed=f"cli-{size}"))
    aws_tls("s3", "cp", "--only-show-errors", src, f"s3://{tls_bucket}/dir/up.bin")
    head = tls_s3.head_object(Bucket=tls_bucket, Key="dir/up.bin")
    assert head["ContentLength"] == size
    if size < 8 * MiB:
        assert head["ETag"] == f'"{file_md5(src)}"'
    else:  # the CLI's 8 MiB threshold: 8 + 8 + 4 MiB parts
        assert head["ETag"].endswith('-3"'), head["ETag"]
    dst = tmp_path / "down.bin"
    aws_tls("s3", "cp", "--only-show-errors", f"s3://{tls_bucket}/dir/up.bin", dst)
    assert dst.stat().st_size == size
    assert file_md5(dst) == file_md5(src)


def test_awscli_wrong_ca_bundle_fails(aws_tls, tls_bucket, pki):
    out = aws_tls("s3", "ls", f"s3://{tls_bucket}", check=False, ca=pki.other_ca)
    assert out.returncode != 0
    assert "SSL" in out.stderr or "certificate" in out.stderr.lower(), out.stderr[-2000:]


# --------------------------------------------------------------------------
# 2. A large object streams through the server in bounded memory
# --------------------------------------------------------------------------

@pytest.fixture
def big_server(reservoir_factory):
    # durability = "none": no fsync of the cache files, to keep a 1 GiB write quick on a
    # shared disk. write_mode stays write-back (delay 0s), so the persister copies the
    # object to the under store while it is read back: its memory counts too.
    srv = reservoir_factory(server_options={"durability": "none"})
    yield srv
    srv.stop()
    for d in (srv.data_dir, srv.ufs_dir):  # the big files: do not leave them in pytest's tmp
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
def test_large_object_streams_in_bounded_memory(big_server):
    srv = big_server
    size = BIG_MIB * MiB
    free = shutil.disk_usage(srv.root).free
    if free < 3 * size + 2 * 1024 * MiB:
        pytest.skip(f"needs {3 * size / MiB:.0f} MiB free disk, have {free / MiB:.0f} MiB")
    pid = srv.proc.pid
    before = proc_status_bytes(pid, "VmHWM")
    s3 = srv.client()
    bucket = unique_bucket_name("big")
    s3.create_bucket(Bucket=bucket)
    key = "big/object.bin"
    path = f"/{bucket}/{key}"
    url = f"http://{HOST}:{srv.port}{path}"

    # PUT: one request, Content-Length body produced block by block, MD5 computed as sent
    up_md5 = hashlib.md5()
    hdrs = sign_headers("PUT", url, {"Content-Length": str(size),
                                     "Content-Type": "application/octet-stream"},
                        payload_hash="UNSIGNED-PAYLOAD")
    conn = http.client.HTTPConnection(HOST, srv.port, timeout=300)
    try:
        conn.putrequest("PUT", path, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        for blk in reproducible_blocks(size, seed=f"big-{BIG_MIB}"):
            up_md5.update(blk)
            conn.send(blk)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:500])
        assert r.getheader("ETag") == f'"{up_md5.hexdigest()}"'
    finally:
        conn.close()
    after_put = proc_status_bytes(pid, "VmHWM")

    # GET: streamed, hashed 1 MiB at a time
    down_md5, n = hashlib.md5(), 0
    conn = http.client.HTTPConnection(HOST, srv.port, timeout=300)
    try:
        conn.request("GET", path, headers=sign_headers("GET", url))
        r = conn.getresponse()
        assert r.status == 200, (r.status, r.read(500))
        assert int(r.getheader("Content-Length")) == size
        while True:
            chunk = r.read(MiB)
            if not chunk:
                break
            down_md5.update(chunk)
            n += len(chunk)
    finally:
        conn.close()
    assert n == size
    assert down_md5.hexdigest() == up_md5.hexdigest()
    after_get = proc_status_bytes(pid, "VmHWM")

    # the persister's copy to the under store, read back from disk
    srv.sync(f"{bucket}/")
    after_sync = proc_status_bytes(pid, "VmHWM")
    ufs_file = srv.ufs_path(bucket, key)
    assert ufs_file.stat().st_size == size
    assert file_md5(ufs_file) == up_md5.hexdigest()

    report = (f"server VmHWM: start {before / 1e6:.0f} MB, after PUT {after_put / 1e6:.0f} MB, "
              f"after GET {after_get / 1e6:.0f} MB, after sync {after_sync / 1e6:.0f} MB "
              f"({BIG_MIB} MiB object; limit {RSS_LIMIT / 1e6:.0f} MB)")
    print(report)
    assert after_sync < RSS_LIMIT, report
    s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    assert srv.alive()


# --------------------------------------------------------------------------
# 3. header_timeout (slowloris) and idle_timeout
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slow_header_server(reservoir_factory):
    return reservoir_factory(server_options={"header_timeout": "2s", "idle_timeout": "5s"})


def test_slowloris_header_is_cut_off(slow_header_server):
    srv = slow_header_server
    served = []

    def others_are_served():
        if len(served) < 8:
            served.append(answers(srv, timeout=5))

    with socket.create_connection((HOST, srv.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        secs, got = wait_closed(sock, drip=b"X-Slow-Header-Name-That-Never-Ends: " * 10,
                                drip_every=0.5, between=others_are_served)
    assert not got or got.startswith(b"HTTP/1.1 4"), got[:200]
    assert served and all(served), served
    assert_up(srv)


def test_silent_connection_is_cut_off(slow_header_server):
    srv = slow_header_server
    with socket.create_connection((HOST, srv.port), timeout=10) as sock:
        wait_closed(sock)
    assert_up(srv)


@pytest.fixture(scope="module")
def idle_server(reservoir_factory):
    # header_timeout well above idle_timeout, so that a close within the bound can only
    # come from idle_timeout
    return reservoir_factory(server_options={"header_timeout": "30s", "idle_timeout": "2s"})


def test_idle_keep_alive_connection_is_closed(idle_server):
    srv = idle_server
    conn = http.client.HTTPConnection(HOST, srv.port, timeout=30)
    try:
        conn.request("GET", "/", headers=sign_headers("GET", f"http://{HOST}:{srv.port}/"))
        r = conn.getresponse()
        assert r.status == 200
        r.read()
        assert not r.will_close  # a keep-alive connection, now idle
        secs, got = wait_closed(conn.sock)
        assert got == b"", got[:200]
    finally:
        conn.close()
    assert_up(srv)


def test_stalled_body_is_cut_off(idle_server):
    srv = idle_server
    s3 = srv.client()
    bucket = unique_bucket_name("stall")
    s3.create_bucket(Bucket=bucket)
    try:
        path = f"/{bucket}/stalled"
        hdrs = sign_headers("PUT", f"http://{HOST}:{srv.port}{path}", {"Content-Length": "100000"},
                            payload_hash="UNSIGNED-PAYLOAD")
        with socket.create_connection((HOST, srv.port), timeout=10) as sock:
            head = [f"PUT {path} HTTP/1.1", f"Host: {HOST}:{srv.port}"]
            head += [f"{k}: {v}" for k, v in hdrs.items()]
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"x" * 1000)
            secs, got = wait_closed(sock)
        assert not got.startswith(b"HTTP/1.1 2"), got[:300]
        # a new client: the old one's pooled keep-alive connection has been idle for about
        # idle_timeout too, and the server may close it just as it is reused (no retries)
        s3 = srv.client()
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == []
    finally:
        delete_bucket_quietly(s3, bucket)
    assert_up(srv)


# --------------------------------------------------------------------------
# 4. max_connections
# --------------------------------------------------------------------------

MAX_CONN = 8


def _open_idle(port: int, n: int) -> list[socket.socket]:
    return [socket.create_connection((HOST, port), timeout=10) for _ in range(n)]


def _fill(srv) -> list[socket.socket]:
    """MAX_CONN idle connections, every one held by the server. The probe
    connection of wait_until_answers may keep its slot a moment after the
    client closed it (the server has not read the close yet); then the last
    idle one is refused, and the round starts again."""
    for _ in range(20):
        idle = _open_idle(srv.port, MAX_CONN)
        time.sleep(0.3)
        if all(still_open(s) for s in idle):
            return idle
        for s in idle:
            s.close()
        time.sleep(0.3)
    pytest.fail("the server never held MAX_CONN idle connections")


def _assert_refused(srv):
    """One connection past the limit is closed promptly, without an answer."""
    with socket.create_connection((HOST, srv.port), timeout=10) as extra:
        try:
            extra.sendall(signed_get_bytes(srv.port))
        except (BrokenPipeError, ConnectionResetError):
            return
        secs, got = wait_closed(extra, bound=5)
    assert got == b"", f"connection {MAX_CONN + 1} was served: {got[:200]!r}"


def test_max_connections(reservoir_factory, pki):
    srv = reservoir_factory(tls=(pki.cert, pki.key),
                            server_options={"max_connections": MAX_CONN, "header_timeout": "30s"})
    wait_until_answers(srv)  # the start-up health check's connection is gone
    for round_ in range(2):  # twice: closing connections gives their slots back exactly
        idle = _fill(srv)
        try:
            _assert_refused(srv)
            open_ = [still_open(s) for s in idle]
            assert all(open_), f"round {round_}: idle connections closed: {open_}"
        finally:
            for s in idle:
                s.close()
        wait_until_answers(srv)
    # failed TLS handshakes (plain HTTP on the TLS port) give their slots back too
    for _ in range(MAX_CONN + 2):
        with socket.create_connection((HOST, srv.tls_port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_closed(s)
    wait_until_answers(srv)
    idle = _fill(srv)
    try:
        _assert_refused(srv)
    finally:
        for s in idle:
            s.close()
    wait_until_answers(srv)
    assert_up(srv)
