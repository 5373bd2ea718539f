"""boto3 (run by both pythons: the image's boto3 1.43 and Debian's 1.26) as applications use
it, over four connections to one Reservoir:

  http-default    http://127.0.0.1:PORT, no addressing_style (botocore picks path style
                  for an IP endpoint)
  http-virtual    addressing_style=virtual, endpoint http://localhost:PORT: the bucket is
                  in the Host header (<bucket>.localhost:PORT)
  https-default   https://127.0.0.1:TLSPORT, verify= the test CA
  https-virtual   addressing_style=virtual, endpoint https://s3.localhost:TLSPORT: TLS to
                  <bucket>.s3.localhost, checked against the certificate's *.s3.localhost

`*.localhost` does not resolve on every machine, so the virtual cases go through
VhostProxy, a small forward proxy in this process on 127.0.0.1: it forwards absolute-form
HTTP requests (keeping the Host header) to the server's plain port and tunnels CONNECT to
its TLS port. Whatever host the client names, traffic only reaches 127.0.0.1. The proxy
records the Host headers and CONNECT targets, so the tests check that the server really
got virtual-hosted requests.

Per connection: put/get/head with metadata and content headers, byte-exact round trips,
NoSuchKey / 404 on HEAD / 403 SignatureDoesNotMatch on a wrong secret; upload_file and
download_file across the multipart threshold with max_concurrency 4; presigned GET and PUT
URLs used with plain urllib; list_objects_v2 paginators over 2,500 keys with and without a
delimiter (every key and common prefix checked); the flexible checksums (CRC32, SHA1,
SHA256 headers or aws-chunked trailers, depending on the botocore version and scheme)
on PutObject and on a multipart upload."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from conftest import (ACCESS_KEY, HOST, REGION, SECRET_KEY, TLS_VHOST_DOMAIN, MiB,
                      delete_bucket_quietly, expect_error, md5_hex, multipart_etag, rand_bytes,
                      unique_bucket_name)

BOTOCORE_VERSION = tuple(int(x) for x in botocore.__version__.split(".")[:2])
VARIANTS = ["http-default", "http-virtual", "https-default", "https-virtual"]


# --------------------------------------------------------------------------
# The forward proxy for virtual-hosted style
# --------------------------------------------------------------------------

class VhostProxy:
    """Forward proxy on 127.0.0.1:port. Absolute-form requests (`GET http://b.localhost:P/k
    HTTP/1.1`) go to 127.0.0.1:http_port as origin-form with the client's Host header, one
    request per upstream connection (Connection: close both ways); CONNECT is tunnelled to
    127.0.0.1:tls_port. `hosts` and `connects` record what clients asked for."""

    def __init__(self, http_port: int, tls_port: int):
        self.http_port, self.tls_port = http_port, tls_port
        self.hosts: list[str] = []
        self.connects: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((HOST, 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def reset(self):
        with self._lock:
            self.hosts.clear()
            self.connects.clear()

    def close(self):
        self._closing = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)

    def _accept_loop(self):
        while not self._closing:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_head(sock: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes]:
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"EOF before the end of a header: {buf[:200]!r}")
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    def _serve(self, conn: socket.socket):
        upstream = None
        try:
            conn.settimeout(120)
            head, rest = self._read_head(conn)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            if method == "CONNECT":
                with self._lock:
                    self.connects.append(target)
                upstream = socket.create_connection((HOST, self.tls_port), timeout=120)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                self._relay(conn, upstream)
                return
            u = urllib.parse.urlsplit(target)
            if u.scheme != "http":
                raise ValueError(f"not an absolute-form http request: {lines[0]!r}")
            origin = (u.path or "/") + (f"?{u.query}" if u.query else "")
            hdrs = [ln for ln in lines[1:] if ln.split(":", 1)[0].strip().lower()
                    not in ("connection", "proxy-connection", "keep-alive")]
            host = [ln.split(":", 1)[1].strip() for ln in hdrs if ln.lower().startswith("host:")]
            with self._lock:
                self.hosts.append(host[0] if host else "")
            out = "\r\n".join([f"{method} {origin} {version}", *hdrs, "Connection: close"])
            upstream = socket.create_connection((HOST, self.http_port), timeout=120)
            upstream.sendall(out.encode("latin-1") + b"\r\n\r\n" + rest)
            self._relay(conn, upstream, rewrite_response=True)
        except Exception as e:  # recorded; the client sees the connection close
            with self._lock:
                self.errors.append(repr(e))
        finally:
            for s in (conn, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()

    def _relay(self, client: socket.socket, upstream: socket.socket, rewrite_response=False):
        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        up = threading.Thread(target=pump, args=(client, upstream), daemon=True)
        up.start()
        if rewrite_response:
            # pass interim 1xx answers as they are; mark the final one Connection: close
            rest = b""
            try:
                while True:
                    head, rest = self._read_head(upstream, rest)
                    lines = head.decode("latin-1").split("\r\n")
                    if lines[0].split(" ")[1].startswith("1"):
                        client.sendall(head + b"\r\n\r\n")
                        continue
                    lines = [lines[0]] + [ln for ln in lines[1:] if ln.split(":", 1)[0].strip().lower()
                                          not in ("connection", "keep-alive")] + ["Connection: close"]
                    client.sendall("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + rest)
                    break
            except (OSError, ConnectionError, IndexError):
                pass
        pump(upstream, client)
        up.join(130)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(reservoir_factory, pki):
    """Reservoir with a TLS listener; virtual-hosted domains localhost and s3.localhost (in this order: the longest match must win)."""
    return reservoir_factory(tls=(pki.cert, pki.key),
                             server_options={"domains": ["localhost", TLS_VHOST_DOMAIN],
                                             "durability": "none"})


@pytest.fixture(scope="module")
def proxy(srv):
    p = VhostProxy(srv.port, srv.tls_port)
    yield p
    p.close()


@pytest.fixture(scope="module")
def admin(srv):
    """Plain path-style client for set-up and checks (not the client under test)."""
    return srv.client(max_pool=16)


class Conn:
    """One way of reaching the server: make boto3 clients, urllib openers, and check what
    the proxy saw."""

    def __init__(self, variant: str, srv, proxy: VhostProxy, pki):
        self.variant = variant
        self.https = variant.startswith("https")
        self.virtual = variant.endswith("virtual")
        self.srv, self.proxy, self.pki = srv, proxy, pki
        if self.https:
            host = TLS_VHOST_DOMAIN if self.virtual else HOST
            self.endpoint = f"https://{host}:{srv.tls_port}"
        else:
            host = "localhost" if self.virtual else HOST
            self.endpoint = f"http://{host}:{srv.port}"

    def client(self, secret_key: str = SECRET_KEY, **cfg):
        kw = dict(region_name=REGION, signature_version="s3v4",
                  retries={"total_max_attempts": 1, "mode": "standard"},
                  connect_timeout=10, read_timeout=60, max_pool_connections=10)
        if self.virtual:
            kw["s3"] = {"addressing_style": "virtual"}
            kw["proxies"] = {"http": self.proxy.url, "https": self.proxy.url}
        kw.update(cfg)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret_key, region_name=REGION, config=Config(**kw),
            verify=str(self.pki.ca) if self.https else None)

    def urlopen(self, req: urllib.request.Request, timeout: float = 30):
        handlers = []
        if self.https:
            handlers.append(urllib.request.HTTPSHandler(
                context=ssl.create_default_context(cafile=str(self.pki.ca))))
        handlers.append(urllib.request.ProxyHandler(
            {"http": self.proxy.url, "https": self.proxy.url} if self.virtual else {}))
        return urllib.request.build_opener(*handlers).open(req, timeout=timeout)

    def check_virtual(self, bucket: str, at_least: int = 1):
        """Every request the proxy saw since reset() addressed `bucket` by host name."""
        if not self.virtual:
            assert not self.proxy.hosts and not self.proxy.connects, "path-style went via the proxy"
            return
        assert not self.proxy.errors, self.proxy.errors
        if self.https:  # one CONNECT per kept-alive TLS connection, not per request
            seen, want = self.proxy.connects, f"{bucket}.{TLS_VHOST_DOMAIN}:{self.srv.tls_port}"
            at_least = 1
        else:
            seen, want = self.proxy.hosts, f"{bucket}.localhost:{self.srv.port}"
        assert len(seen) >= at_least, (seen, want)
        assert set(seen) == {want}, seen


@pytest.fixture(params=VARIANTS)
def conn(request, srv, proxy, pki, monkeypatch):
    c = Conn(request.param, srv, proxy, pki)
    # run.sh exempts localhost and .localhost from proxies; the virtual cases need the proxy
    for k in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(k, raising=False)
    # and nothing from the environment picks the CA: each case passes its own
    for k in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(k, raising=False)
    proxy.reset()
    return c


@pytest.fixture
def bkt(admin, request):
    name = unique_bucket_name(request.node.name.split("[")[0].replace("test_", ""))
    admin.create_bucket(Bucket=name)
    yield name
    delete_bucket_quietly(admin, name)


@contextlib.contextmanager
def recorded(client):
    """(operation, headers) of every request the client sends."""
    seen: list[tuple[str, dict]] = []

    def record(request, event_name=None, **_):
        hdrs = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v))
                for k, v in request.headers.items()}
        seen.append(((event_name or "").rsplit(".", 1)[-1], hdrs))

    client.meta.events.register("before-send.s3", record)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-send.s3", record)


# --------------------------------------------------------------------------
# Objects, metadata, errors
# --------------------------------------------------------------------------

def test_put_get_head_metadata_and_errors(conn, admin, bkt):
    s3 = conn.client()
    data = rand_bytes(300_001, seed=f"b3-{conn.variant}")
    key = "dir/obj ü+x.bin"
    put = s3.put_object(Bucket=bkt, Key=key, Body=data, ContentType="application/x-test",
                        Metadata={"team": "ml", "run-id": "42"}, CacheControl="max-age=60",
                        ContentDisposition='attachment; filename="x.bin"', ContentLanguage="en")
    assert put["ETag"] == f'"{md5_hex(data)}"'
    got = s3.get_object(Bucket=bkt, Key=key)
    assert got["Body"].read() == data
    for r in (got, s3.head_object(Bucket=bkt, Key=key)):
        assert r["ContentLength"] == len(data)
        assert r["ContentType"] == "application/x-test"
        assert r["Metadata"] == {"team": "ml", "run-id": "42"}
        assert r["CacheControl"] == "max-age=60"
        assert r["ContentDisposition"] == 'attachment; filename="x.bin"'
        assert r["ContentLanguage"] == "en"
        assert r["ETag"] == put["ETag"]
    # the client under test and the plain admin client see the same object
    assert admin.get_object(Bucket=bkt, Key=key)["Body"].read() == data
    rng = s3.get_object(Bucket=bkt, Key=key, Range="bytes=1000-1999")
    assert rng["Body"].read() == data[1000:2000] and rng["ContentRange"] == f"bytes 1000-1999/{len(data)}"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bkt)["Contents"]] == [key]

    expect_error(s3.get_object, Bucket=bkt, Key="missing", code="NoSuchKey", status=404)
    expect_error(s3.head_object, Bucket=bkt, Key="missing", status=404)
    bad = conn.client(secret_key=SECRET_KEY + "-wrong")
    expect_error(bad.get_object, Bucket=bkt, Key=key, code="SignatureDoesNotMatch", status=403)
    expect_error(bad.put_object, Bucket=bkt, Key="nope", Body=b"x", code="SignatureDoesNotMatch",
                 status=403)
    s3.delete_object(Bucket=bkt, Key=key)
    expect_error(admin.head_object, Bucket=bkt, Key=key, status=404)
    conn.check_virtual(bkt, at_least=8)


# --------------------------------------------------------------------------
# Managed transfers across the multipart threshold
# --------------------------------------------------------------------------

def test_upload_download_file_multipart(conn, admin, bkt, tmp_path):
    s3 = conn.client()
    size = 13 * MiB + 12345
    data = rand_bytes(size, seed=f"mp-{conn.variant}")
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    with recorded(s3) as seen:
        s3.upload_file(str(src), bkt, "big/file.bin", Config=cfg,
                       ExtraArgs={"ContentType": "application/x-big", "Metadata": {"k": "v"}})
    ops = [op for op, _ in seen]
    assert ops.count("UploadPart") == 3 and "CompleteMultipartUpload" in ops, ops
    head = admin.head_object(Bucket=bkt, Key="big/file.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == '"%s"' % multipart_etag([data[:5 * MiB], data[5 * MiB:10 * MiB], data[10 * MiB:]])
    assert head["ContentType"] == "application/x-big" and head["Metadata"] == {"k": "v"}

    dst = tmp_path / "dst.bin"
    with recorded(s3) as seen:
        s3.download_file(bkt, "big/file.bin", str(dst), Config=cfg)
    gets = [h for op, h in seen if op == "GetObject"]
    assert len(gets) >= 3 and all("range" in h for h in gets), gets  # parallel ranged GETs
    assert dst.stat().st_size == size
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()

    # below the threshold: one PutObject, one GetObject
    small = tmp_path / "small.bin"
    small.write_bytes(data[:4 * MiB])
    with recorded(s3) as seen:
        s3.upload_file(str(small), bkt, "small.bin", Config=cfg)
    assert [op for op, _ in seen] == ["PutObject"]
    s3.download_file(bkt, "small.bin", str(tmp_path / "small.back"), Config=cfg)
    assert (tmp_path / "small.back").read_bytes() == data[:4 * MiB]
    conn.check_virtual(bkt, at_least=8)


# --------------------------------------------------------------------------
# Presigned URLs with plain urllib
# --------------------------------------------------------------------------

def test_presigned_urls_with_urllib(conn, admin, bkt):
    s3 = conn.client()
    key = "pre/signed ü.bin"
    data = rand_bytes(70_000, seed=f"pre-{conn.variant}")
    put_url = s3.generate_presigned_url("put_object", ExpiresIn=300, Params={
        "Bucket": bkt, "Key": key, "ContentType": "application/x-pre"})
    get_url = s3.generate_presigned_url("get_object", ExpiresIn=300, Params={"Bucket": bkt, "Key": key})
    for url in (put_url, get_url):
        u = urllib.parse.urlsplit(url)
        assert u.scheme == ("https" if conn.https else "http"), url
        if conn.virtual:
            assert u.hostname.startswith(f"{bkt}."), url
        else:
            assert u.hostname == HOST and u.path.startswith(f"/{bkt}/"), url
        assert "X-Amz-Signature=" in u.query

    req = urllib.request.Request(put_url, data=data, method="PUT",
                                 headers={"Content-Type": "application/x-pre"})
    with conn.urlopen(req) as r:
        assert r.status == 200
        assert r.headers["ETag"] == f'"{md5_hex(data)}"'
    head = admin.head_object(Bucket=bkt, Key=key)
    assert head["ContentType"] == "application/x-pre" and head["ContentLength"] == len(data)

    with conn.urlopen(urllib.request.Request(get_url)) as r:
        assert r.status == 200 and r.read() == data
    with conn.urlopen(urllib.request.Request(get_url, headers={"Range": "bytes=5-9"})) as r:
        assert r.status == 206 and r.read() == data[5:10]

    # a different Content-Type than the one signed, and a tampered signature: 403
    bad = urllib.request.Request(put_url, data=b"x", method="PUT", headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as ei:
        conn.urlopen(bad)
    assert ei.value.code == 403 and b"SignatureDoesNotMatch" in ei.value.read()
    tampered = get_url.replace("X-Amz-Signature=", "X-Amz-Signature=0")[:len(get_url)]
    with pytest.raises(urllib.error.HTTPError) as ei:
        conn.urlopen(urllib.request.Request(tampered))
    assert ei.value.code == 403
    missing = s3.generate_presigned_url("get_object", ExpiresIn=300, Params={"Bucket": bkt, "Key": "nope"})
    with pytest.raises(urllib.error.HTTPError) as ei:
        conn.urlopen(urllib.request.Request(missing))
    assert ei.value.code == 404 and b"NoSuchKey" in ei.value.read()
    conn.check_virtual(bkt, at_least=6)


# --------------------------------------------------------------------------
# Paginators over 2,500 keys
# --------------------------------------------------------------------------

N_KEYS = 2500


def _listing_keys() -> list[str]:
    keys = []
    for i in range(N_KEYS):
        if i % 10 == 0:
            keys.append(f"top-{i:04d}.txt")                 # 250 at the top level
        elif i % 10 < 7:
            keys.append(f"d{i % 23:02d}/k-{i:04d}")          # 23 folders
        else:
            keys.append(f"d{i % 23:02d}/sub{i % 3}/k-{i:04d}")  # with sub-folders
    return sorted(keys)


@pytest.fixture(scope="module")
def listing_bucket(admin):
    name = unique_bucket_name("pager")
    admin.create_bucket(Bucket=name)
    keys = _listing_keys()
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda k: admin.put_object(Bucket=name, Key=k, Body=k.encode()), keys))
    yield name, keys
    delete_bucket_quietly(admin, name)


def _paginate(s3, **kw):
    keys, prefixes, pages = [], [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(**kw):
        pages += 1
        got_k = [o["Key"] for o in page.get("Contents", [])]
        got_p = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert page["KeyCount"] == len(got_k) + len(got_p), page["KeyCount"]
        if "PaginationConfig" in kw:
            assert page["KeyCount"] <= kw["PaginationConfig"]["PageSize"]
        keys += got_k
        prefixes += got_p
    return keys, prefixes, pages


def test_paginator_2500_keys(conn, listing_bucket):
    name, keys = listing_bucket
    s3 = conn.client()

    got, prefixes, pages = _paginate(s3, Bucket=name)
    assert got == keys and prefixes == [] and pages == 3  # 1000 + 1000 + 500

    got, prefixes, pages = _paginate(s3, Bucket=name, PaginationConfig={"PageSize": 300})
    assert got == keys and pages == 9

    # delimiter "/": the 250 top-level keys and the 23 folders, interleaved in order
    got, prefixes, pages = _paginate(s3, Bucket=name, Delimiter="/", PaginationConfig={"PageSize": 50})
    want_keys = [k for k in keys if "/" not in k]
    want_prefixes = sorted({k.split("/")[0] + "/" for k in keys if "/" in k})
    assert got == want_keys and len(got) == 250
    assert prefixes == want_prefixes and len(prefixes) == 23
    assert pages == -(-(250 + 23) // 50)

    # prefix + delimiter one level down
    got, prefixes, _ = _paginate(s3, Bucket=name, Prefix="d07/", Delimiter="/",
                                 PaginationConfig={"PageSize": 7})
    assert got == [k for k in keys if k.startswith("d07/") and k.count("/") == 1]
    assert prefixes == sorted({k.rsplit("/", 1)[0] + "/" for k in keys
                               if k.startswith("d07/") and k.count("/") == 2})

    # StartAfter, and a delimiter other than "/"
    got, _, _ = _paginate(s3, Bucket=name, StartAfter="d10/", PaginationConfig={"PageSize": 400})
    assert got == [k for k in keys if k > "d10/"]
    got, prefixes, _ = _paginate(s3, Bucket=name, Delimiter="-", PaginationConfig={"PageSize": 100})
    assert got == [] and prefixes == sorted({k.split("-")[0] + "-" for k in keys})

    # the v1 paginator too (Marker / NextMarker)
    v1 = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=name, PaginationConfig={"PageSize": 700}):
        v1 += [o["Key"] for o in page.get("Contents", [])]
    assert v1 == keys
    conn.check_virtual(name, at_least=20)


# --------------------------------------------------------------------------
# Flexible checksums and the body signing modes they bring
# --------------------------------------------------------------------------

def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _checksum(algo: str, data: bytes) -> str:
    if algo == "CRC32":
        return _b64((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big"))
    return _b64(hashlib.new(algo.lower(), data).digest())


@pytest.mark.parametrize("algo", ["CRC32", "SHA1", "SHA256"])
def test_checksums_put_and_multipart(conn, admin, bkt, algo):
    s3 = conn.client()
    data = rand_bytes(200_000, seed=f"ck-{algo}")
    with recorded(s3) as seen:
        put = s3.put_object(Bucket=bkt, Key="ck.bin", Body=data, ChecksumAlgorithm=algo)
    want = _checksum(algo, data)
    assert put.get(f"Checksum{algo}", want) == want, put
    sent = [h for op, h in seen if op == "PutObject"][0]
    # either a checksum header or an aws-chunked body with it in the trailer
    if "x-amz-trailer" in sent:
        assert sent["x-amz-trailer"] == f"x-amz-checksum-{algo.lower()}", sent
        assert sent["x-amz-content-sha256"].startswith("STREAMING-"), sent
        assert "aws-chunked" in sent.get("content-encoding", ""), sent
    else:
        assert sent.get(f"x-amz-checksum-{algo.lower()}") == want, sent
    got = s3.get_object(Bucket=bkt, Key="ck.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got.get("ContentEncoding", "") in ("", None), got.get("ContentEncoding")
    if f"Checksum{algo}" in got:
        assert got[f"Checksum{algo}"] == want

    # the same algorithm on every part of a managed multipart upload
    big = rand_bytes(11 * MiB, seed=f"ckmp-{algo}")
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=3)
    with recorded(s3) as seen:
        s3.upload_fileobj(io.BytesIO(big), bkt, "ck-mp.bin", Config=cfg,
                          ExtraArgs={"ChecksumAlgorithm": algo})
    parts = [h for op, h in seen if op == "UploadPart"]
    assert len(parts) == 3
    for h in parts:
        assert f"x-amz-checksum-{algo.lower()}" in h or h.get("x-amz-trailer") == \
            f"x-amz-checksum-{algo.lower()}", h
    assert md5_hex(admin.get_object(Bucket=bkt, Key="ck-mp.bin")["Body"].read()) == md5_hex(big)
    conn.check_virtual(bkt, at_least=5)


def test_unsigned_and_signed_payloads(conn, admin, bkt):
    """payload_signing_enabled True and False. Over http: the body's SHA-256, then
    UNSIGNED-PAYLOAD. Over https botocore 1.29 does the same, botocore >= 1.36 sends
    STREAMING-UNSIGNED-PAYLOAD-TRAILER (aws-chunked, CRC32 trailer) either way."""
    data = rand_bytes(50_000, seed="payload")
    modes = set()
    for enabled in (True, False):
        s3 = conn.client(s3={**({"addressing_style": "virtual"} if conn.virtual else {}),
                             "payload_signing_enabled": enabled})
        with recorded(s3) as seen:
            s3.put_object(Bucket=bkt, Key=f"p-{enabled}", Body=data)
        h = [h for op, h in seen if op == "PutObject"][0]
        modes.add(h["x-amz-content-sha256"])
        if enabled and "x-amz-trailer" not in h:
            assert h["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest(), h
        assert admin.get_object(Bucket=bkt, Key=f"p-{enabled}")["Body"].read() == data
    print(f"{conn.variant}: x-amz-content-sha256 values sent: {sorted(modes)}")
    if not conn.https:
        assert modes == {hashlib.sha256(data).hexdigest(), "UNSIGNED-PAYLOAD"}, modes
    conn.check_virtual(bkt, at_least=2)
