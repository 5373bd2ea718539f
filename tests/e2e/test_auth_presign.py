"""Authentication: SigV4 header auth errors, anonymous access, presigned GET/PUT URLs
(including expiry and tampering), and virtual-hosted-style addressing."""

import datetime as dt
import hashlib
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import requests

from conftest import (ACCESS_KEY, HOST, REGION, SECRET_KEY, AWSRequest, Credentials,
                      expect_error, make_client, md5_hex, quote_key, rand_bytes, raw_request, sign_headers,
                      xml_error_code)


def urlopen(req, timeout=30):
    """(status, headers, body) for a plain urllib request, errors included."""
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


# --------------------------------------------------------------------------
# The test helper itself
# --------------------------------------------------------------------------

def test_raw_signer_matches_botocore():
    """The hand-made request signer used by this suite agrees with botocore's S3 signer."""
    from unittest import mock

    from botocore.auth import S3SigV4Auth
    fixed = dt.datetime(2024, 1, 2, 3, 4, 5)
    cases = [("/b/k", ""), ("/b/" + quote_key("a b/ü+%~x"), ""),
             ("/b", "list-type=2&prefix=a%2Fb&max-keys=7"), ("/b/k", "uploads=")]
    for path, q in cases:
        url = f"http://{HOST}:9/{path.lstrip('/')}" + ("?" + q if q else "")
        with mock.patch("botocore.auth.datetime") as d:
            d.datetime.utcnow.return_value = fixed
            d.datetime.now.return_value = fixed
            mine = sign_headers("PUT", url, {}, b"hello")
            req = AWSRequest(method="PUT", url=url, data=b"hello", headers={})
            S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION).add_auth(req)
        assert mine["X-Amz-Date"] == req.headers["X-Amz-Date"], path
        assert mine["Authorization"] == req.headers["Authorization"], (path, q)


# --------------------------------------------------------------------------
# Header authentication
# --------------------------------------------------------------------------

@pytest.mark.moto_deviates(reason="moto does not verify signatures unless its IAM auth is enabled")
def test_wrong_secret_signature_does_not_match(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret data")
    bad = make_client(server.endpoint, secret_key="not-the-secret")
    expect_error(bad.get_object, Bucket=bucket, Key="k", code="SignatureDoesNotMatch", status=403)
    expect_error(bad.put_object, Bucket=bucket, Key="k", Body=b"overwrite",
                 code="SignatureDoesNotMatch", status=403)
    expect_error(bad.list_buckets, code="SignatureDoesNotMatch", status=403)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret data"


@pytest.mark.moto_deviates(reason="moto accepts any access key unless its IAM auth is enabled")
def test_unknown_access_key(server, s3, bucket):
    bad = make_client(server.endpoint, access_key="AKIDUNKNOWN", secret_key=SECRET_KEY)
    expect_error(bad.list_objects_v2, Bucket=bucket, code="InvalidAccessKeyId", status=403)
    expect_error(bad.put_object, Bucket=bucket, Key="x", Body=b"x", code="InvalidAccessKeyId", status=403)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.moto_deviates(reason="moto serves anonymous requests")
@pytest.mark.parametrize("method,what", [("GET", "object"), ("GET", "bucket"), ("GET", "service"),
                                         ("PUT", "object"), ("DELETE", "object"), ("HEAD", "object")])
def test_anonymous_request_denied(server, s3, bucket, method, what):
    s3.put_object(Bucket=bucket, Key="k", Body=b"private")
    path = {"object": f"/{bucket}/k", "bucket": f"/{bucket}", "service": "/"}[what]
    r = raw_request(server.endpoint, method, path, body=b"anon" if method == "PUT" else b"", sign=False)
    assert r.status == 403, r
    if method != "HEAD":
        assert r.error_code == "AccessDenied", r
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"private"


@pytest.mark.moto_deviates(reason="moto serves anonymous requests")
def test_anonymous_plain_urllib_get_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"private")
    status, _, body = urlopen(f"{server.endpoint}/{bucket}/k")
    assert status == 403
    assert xml_error_code(body) == "AccessDenied"


@pytest.mark.moto_deviates(reason="moto does not check the request time")
def test_request_time_too_skewed(server, bucket):
    old = (dt.datetime.utcnow() - dt.timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    r = raw_request(server.endpoint, "GET", f"/{bucket}", query="list-type=2", amz_date=old)
    assert r.status == 403, r
    assert r.error_code == "RequestTimeTooSkewed", r


def test_raw_signed_request_accepted(server, s3, bucket):
    """A hand-signed request (as used by the bad-input tests) is accepted."""
    r = raw_request(server.endpoint, "PUT", f"/{bucket}/raw%20key", body=b"raw body")
    assert r.status == 200, r
    assert r.headers.get("etag") == f'"{md5_hex(b"raw body")}"'
    assert s3.get_object(Bucket=bucket, Key="raw key")["Body"].read() == b"raw body"


def test_unsigned_payload_accepted(server, s3, bucket):
    r = raw_request(server.endpoint, "PUT", f"/{bucket}/unsigned", body=b"unsigned body",
                    payload_hash="UNSIGNED-PAYLOAD")
    assert r.status == 200, r
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == b"unsigned body"


@pytest.mark.moto_deviates(reason="moto does not verify x-amz-content-sha256")
def test_payload_hash_mismatch(server, s3, bucket):
    r = raw_request(server.endpoint, "PUT", f"/{bucket}/k", body=b"actual body",
                    payload_hash=md5_hex(b"x") * 2)  # 64 hex chars, wrong
    assert r.status == 400, r
    assert r.error_code == "XAmzContentSHA256Mismatch", r
    expect_error(s3.head_object, Bucket=bucket, Key="k", status=404)


# --------------------------------------------------------------------------
# Presigned URLs
# --------------------------------------------------------------------------

def test_presigned_get_urllib(s3, bucket):
    data = b"presigned content \x00\xff"
    s3.put_object(Bucket=bucket, Key="dir/pre signed ü.bin", Body=data)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/pre signed ü.bin"},
                                    ExpiresIn=300)
    assert urllib.parse.urlsplit(url).hostname == HOST
    status, headers, body = urlopen(url)
    assert status == 200
    assert body == data
    assert headers["etag"] == f'"{md5_hex(data)}"'


def test_presigned_get_requests_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "r"}, ExpiresIn=300)
    resp = requests.get(url, headers={"Range": "bytes=2-4"}, timeout=30)
    assert resp.status_code == 206
    assert resp.content == b"234"


@pytest.mark.moto_deviates(reason="moto ignores the response-* query parameters")
def test_presigned_get_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"x", ContentType="text/plain")
    url = s3.generate_presigned_url("get_object", ExpiresIn=300, Params={
        "Bucket": bucket, "Key": "r", "ResponseContentDisposition": 'attachment; filename="r.txt"',
        "ResponseContentType": "application/x-download"})
    status, headers, body = urlopen(url)
    assert status == 200
    assert headers["content-disposition"] == 'attachment; filename="r.txt"'
    assert headers["content-type"] == "application/x-download"


def test_presigned_put_requests(s3, bucket):
    data = b"uploaded through a presigned URL" * 100
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up/loaded.txt"},
                                    ExpiresIn=300)
    resp = requests.put(url, data=data, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("ETag") == f'"{md5_hex(data)}"'
    assert s3.get_object(Bucket=bucket, Key="up/loaded.txt")["Body"].read() == data


def test_presigned_put_urllib_with_content_type(s3, bucket):
    url = s3.generate_presigned_url("put_object", ExpiresIn=300, Params={
        "Bucket": bucket, "Key": "typed", "ContentType": "image/png"})
    req = urllib.request.Request(url, data=b"\x89PNG....", method="PUT",
                                 headers={"Content-Type": "image/png"})
    status, _, body = urlopen(req)
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="typed")
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == 8


@pytest.mark.moto_deviates(reason="moto does not check the expiry of presigned URLs")
def test_presigned_expired(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    time.sleep(2.2)
    status, _, body = urlopen(url)
    assert status == 403
    assert xml_error_code(body) == "AccessDenied"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "late"}, ExpiresIn=1)
    time.sleep(2.2)
    resp = requests.put(put_url, data=b"too late", timeout=30)
    assert resp.status_code == 403
    assert xml_error_code(resp.content) == "AccessDenied"
    expect_error(s3.head_object, Bucket=bucket, Key="late", status=404)


@pytest.mark.moto_deviates(reason="moto does not verify presigned signatures")
def test_presigned_tampered(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"A")
    s3.put_object(Bucket=bucket, Key="b", Body=b"B")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"}, ExpiresIn=300)
    # another key with the same signature
    other = url.replace(f"/{bucket}/a?", f"/{bucket}/b?")
    assert other != url
    status, _, body = urlopen(other)
    assert status == 403
    assert xml_error_code(body) == "SignatureDoesNotMatch"
    # a changed signature
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qs(parts.query)
    sig = q["X-Amz-Signature"][0]
    bad_sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    status, _, body = urlopen(url.replace(sig, bad_sig))
    assert status == 403
    assert xml_error_code(body) == "SignatureDoesNotMatch"
    # a longer validity than was signed
    status, _, body = urlopen(url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"))
    assert status == 403
    assert xml_error_code(body) == "SignatureDoesNotMatch"


@pytest.mark.moto_deviates(reason="moto does not check X-Amz-Expires bounds")
def test_presigned_expires_over_a_week_rejected(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                    ExpiresIn=7 * 24 * 3600 + 1)
    status, _, body = urlopen(url)
    assert status in (400, 403)
    assert xml_error_code(body) in ("AuthorizationQueryParametersError", "AccessDenied")


# --------------------------------------------------------------------------
# Virtual-hosted style
# --------------------------------------------------------------------------

def _localhost_subdomains_resolve() -> bool:
    try:
        return all(ai[4][0] == HOST for ai in socket.getaddrinfo("probe-bucket.localhost", 80,
                                                                   socket.AF_INET))
    except OSError:
        return False


def _virtual_client(server):
    port = urllib.parse.urlsplit(server.endpoint).port
    return make_client(f"http://localhost:{port}", addressing_style="virtual")


def _exercise_virtual_client(vc, s3, bucket):
    vc.put_object(Bucket=bucket, Key="vhost/key ü", Body=b"virtual")
    assert s3.get_object(Bucket=bucket, Key="vhost/key ü")["Body"].read() == b"virtual"
    assert vc.get_object(Bucket=bucket, Key="vhost/key ü")["Body"].read() == b"virtual"
    assert [o["Key"] for o in vc.list_objects_v2(Bucket=bucket)["Contents"]] == ["vhost/key ü"]
    vc.delete_object(Bucket=bucket, Key="vhost/key ü")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_virtual_hosted_style_boto3(server, s3, bucket):
    if not _localhost_subdomains_resolve():
        pytest.skip("*.localhost does not resolve to 127.0.0.1 on this machine; "
                    "see test_virtual_hosted_style_boto3_pinned_resolver for the same test")
    _exercise_virtual_client(_virtual_client(server), s3, bucket)


def test_virtual_hosted_style_boto3_pinned_resolver(server, s3, bucket, monkeypatch):
    """Same as above, with this process resolving <bucket>.localhost to 127.0.0.1 itself
    (the machine's resolver may not), so the request still only goes to 127.0.0.1."""
    real = socket.getaddrinfo

    def pinned(host, *args, **kw):
        if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
            host = HOST
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", pinned)
    _exercise_virtual_client(_virtual_client(server), s3, bucket)


def test_virtual_hosted_style_raw_host_header(server, s3, bucket):
    port = urllib.parse.urlsplit(server.endpoint).port
    host = f"{bucket}.localhost:{port}"
    r = raw_request(server.endpoint, "PUT", "/raw/vhost%20key", body=b"vh", host_header=host)
    assert r.status == 200, r
    assert s3.get_object(Bucket=bucket, Key="raw/vhost key")["Body"].read() == b"vh"
    r = raw_request(server.endpoint, "GET", "/", query="list-type=2", host_header=host)
    assert r.status == 200, r
    assert b"<Key>raw/vhost key</Key>" in r.body
    r = raw_request(server.endpoint, "GET", "/raw/vhost%20key", host_header=host)
    assert r.status == 200 and r.body == b"vh", r


# --------------------------------------------------------------------------
# aws-chunked bodies (streaming SigV4), as SDKs send them for streaming uploads
# --------------------------------------------------------------------------

def _hmac(key: bytes, msg: str) -> bytes:
    import hmac
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _signing_key(secret: str, date: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, REGION)
    k = _hmac(k, "s3")
    return _hmac(k, "aws4_request")


def _chunked_signed_body(data: bytes, hdrs: dict, chunk: int, secret: str = SECRET_KEY,
                         corrupt_chunk: int | None = None) -> bytes:
    import hmac
    amz_date = hdrs["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    prev = hdrs["Authorization"].rsplit("Signature=", 1)[1]
    key = _signing_key(secret, amz_date[:8])
    empty = hashlib.sha256(b"").hexdigest()
    out = b""
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for n, piece in enumerate(pieces):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty,
                         hashlib.sha256(piece).hexdigest()])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        prev = sig
        if corrupt_chunk == n:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out += f"{len(piece):x};chunk-signature={sig}\r\n".encode() + piece + b"\r\n"
    return out


def _chunked_headers(path: str, server, data: bytes, encoded_len: int, payload_hash: str,
                     extra=None) -> dict:
    hdrs = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
            "Content-Length": str(encoded_len)}
    hdrs.update(extra or {})
    return sign_headers("PUT", server.endpoint + path, hdrs, payload_hash=payload_hash)


def _send(server, path, hdrs, body):
    import http.client
    u = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("PUT", path, body=body, headers=hdrs)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _signed_chunked_put(server, path, data, chunk=64 * 1024, corrupt_chunk=None):
    # the encoded length does not depend on the signature values, only on their size
    probe = _chunked_signed_body(data, {"X-Amz-Date": "20240101T000000Z",
                                        "Authorization": "Signature=" + "0" * 64}, chunk)
    hdrs = _chunked_headers(path, server, data, len(probe), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = _chunked_signed_body(data, hdrs, chunk, corrupt_chunk=corrupt_chunk)
    assert len(body) == len(probe)
    return _send(server, path, hdrs, body)


def test_aws_chunked_signed_upload(server, s3, bucket):
    data = rand_bytes(200_000)
    status, body = _signed_chunked_put(server, f"/{bucket}/chunked", data)
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == data
    assert got["ContentLength"] == len(data)
    assert got.get("ContentEncoding") in (None, "")  # aws-chunked is not stored


@pytest.mark.moto_deviates(reason="moto does not verify chunk signatures")
def test_aws_chunked_bad_chunk_signature(server, s3, bucket):
    data = rand_bytes(150_000)
    status, body = _signed_chunked_put(server, f"/{bucket}/chunked", data, corrupt_chunk=1)
    assert status == 403, body
    assert xml_error_code(body) == "SignatureDoesNotMatch"
    expect_error(s3.head_object, Bucket=bucket, Key="chunked", status=404)


def _unsigned_trailer_put(server, path, data, crc_of, chunk=64 * 1024):
    import base64
    import struct
    import zlib
    crc = base64.b64encode(struct.pack(">I", zlib.crc32(crc_of) & 0xFFFFFFFF)).decode()
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n"
                    for p in (data[i:i + chunk] for i in range(0, len(data), chunk)))
    body += b"0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    hdrs = _chunked_headers(path, server, data, len(body), "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                            {"x-amz-trailer": "x-amz-checksum-crc32"})
    return _send(server, path, hdrs, body)


def test_aws_chunked_unsigned_with_trailing_checksum(server, s3, bucket):
    data = rand_bytes(150_000)
    status, body = _unsigned_trailer_put(server, f"/{bucket}/trailer", data, crc_of=data)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == data


@pytest.mark.moto_deviates(reason="moto does not verify trailing checksums")
def test_aws_chunked_wrong_trailing_checksum(server, s3, bucket):
    data = rand_bytes(100_000)
    status, body = _unsigned_trailer_put(server, f"/{bucket}/trailer", data, crc_of=b"other")
    assert status == 400, body
    assert xml_error_code(body) in ("BadDigest", "XAmzContentChecksumMismatch")
    expect_error(s3.head_object, Bucket=bucket, Key="trailer", status=404)
