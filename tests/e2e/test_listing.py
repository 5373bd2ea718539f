"""Listing: ListObjects v1 and v2 (prefix, delimiter, CommonPrefixes, paging with
marker / continuation-token / start-after, max-keys, encoding-type=url, fetch-owner)
and ListObjectVersions on an unversioned bucket."""

import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from conftest import (IS_MOTO, S3_NS, delete_bucket_quietly, expect_error, md5_hex, raw_request,
                      unique_bucket_name)

KEYS = sorted(
    [f"photos/2024/{i:02d}.jpg" for i in range(10)]
    + [f"photos/2025/{i:02d}.jpg" for i in range(5)]
    + [f"docs/{i}.txt" for i in range(6)]
    + ["docs/sub/deep/x.md", "photos/readme", "root1", "root2", "zeta", "a-b", "a/b", "a.b",
       "space key", "ünïcode/ö"],
    key=lambda k: k.encode())  # S3 orders keys by their UTF-8 bytes


@pytest.fixture(scope="module")
def lb(server):
    """A bucket with the KEYS above (about 30), filled once for the module."""
    s3 = server.client()
    name = unique_bucket_name("listing")
    s3.create_bucket(Bucket=name)
    for k in KEYS:
        s3.put_object(Bucket=name, Key=k, Body=k.encode())
    yield name
    delete_bucket_quietly(s3, name)


def keys_of(page):
    return [o["Key"] for o in page.get("Contents", [])]


def prefixes_of(page):
    return [p["Prefix"] for p in page.get("CommonPrefixes", [])]


def test_fixture_size():
    assert 28 <= len(KEYS) <= 40


def test_list_v2_all(s3, lb):
    page = s3.list_objects_v2(Bucket=lb)
    assert keys_of(page) == KEYS
    assert page["KeyCount"] == len(KEYS)
    assert page["IsTruncated"] is False
    assert page["Name"] == lb
    for o in page["Contents"]:
        assert o["Size"] == len(o["Key"].encode())
        assert o["ETag"] == f'"{md5_hex(o["Key"].encode())}"'
        assert o["LastModified"] is not None
        assert o.get("StorageClass", "STANDARD") == "STANDARD"
        assert "Owner" not in o  # v2 omits the owner unless fetch-owner=true


def test_list_v1_all(s3, lb):
    page = s3.list_objects(Bucket=lb)
    assert keys_of(page) == KEYS
    assert page["IsTruncated"] is False
    assert all(o.get("Owner", {}).get("ID") for o in page["Contents"])  # v1 includes the owner


def test_list_v2_fetch_owner(s3, lb):
    page = s3.list_objects_v2(Bucket=lb, FetchOwner=True, Prefix="docs/")
    assert page["Contents"]
    assert all(o.get("Owner", {}).get("ID") for o in page["Contents"])


@pytest.mark.parametrize("version", [1, 2])
def test_list_prefix(s3, lb, version):
    fn = s3.list_objects if version == 1 else s3.list_objects_v2
    page = fn(Bucket=lb, Prefix="photos/2024/")
    assert keys_of(page) == [f"photos/2024/{i:02d}.jpg" for i in range(10)]
    assert page["Prefix"] == "photos/2024/"
    assert keys_of(fn(Bucket=lb, Prefix="nothing-here")) == []


@pytest.mark.parametrize("version", [1, 2])
def test_list_delimiter_root(s3, lb, version):
    fn = s3.list_objects if version == 1 else s3.list_objects_v2
    page = fn(Bucket=lb, Delimiter="/")
    assert prefixes_of(page) == ["a/", "docs/", "photos/", "ünïcode/"]
    assert keys_of(page) == [k for k in KEYS if "/" not in k]
    assert page["Delimiter"] == "/"


@pytest.mark.parametrize("version", [1, 2])
def test_list_prefix_and_delimiter(s3, lb, version):
    fn = s3.list_objects if version == 1 else s3.list_objects_v2
    page = fn(Bucket=lb, Prefix="photos/", Delimiter="/")
    assert prefixes_of(page) == ["photos/2024/", "photos/2025/"]
    assert keys_of(page) == ["photos/readme"]
    page = fn(Bucket=lb, Prefix="docs/", Delimiter="/")
    assert prefixes_of(page) == ["docs/sub/"]
    assert keys_of(page) == [f"docs/{i}.txt" for i in range(6)]


def test_list_non_slash_delimiter(s3, lb):
    page = s3.list_objects_v2(Bucket=lb, Delimiter=".")
    # every key containing '.' rolls up to the part up to and including its first '.'
    expected_prefixes = sorted({k[:k.index(".") + 1] for k in KEYS if "." in k}, key=str.encode)
    assert prefixes_of(page) == expected_prefixes
    assert keys_of(page) == [k for k in KEYS if "." not in k]


def test_list_v2_paging_max_keys_7(s3, lb):
    got, pages, token = [], 0, None
    while True:
        kw = {"Bucket": lb, "MaxKeys": 7}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        pages += 1
        assert page["MaxKeys"] == 7
        assert page["KeyCount"] == len(keys_of(page)) <= 7
        got += keys_of(page)
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            break
        assert len(keys_of(page)) == 7
        token = page["NextContinuationToken"]
        assert token
        assert pages < 20
    assert got == KEYS
    assert pages == -(-len(KEYS) // 7)


def test_list_v2_paging_with_delimiter(s3, lb):
    # max-keys counts keys and common prefixes together
    entries, token = [], None
    while True:
        kw = {"Bucket": lb, "MaxKeys": 2, "Delimiter": "/"}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        n = len(keys_of(page)) + len(prefixes_of(page))
        assert n <= 2
        assert page["KeyCount"] == n
        entries += keys_of(page) + prefixes_of(page)
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    full = s3.list_objects_v2(Bucket=lb, Delimiter="/")
    assert sorted(entries) == sorted(keys_of(full) + prefixes_of(full))
    assert len(entries) == len(set(entries))


def test_list_v2_start_after(s3, lb):
    page = s3.list_objects_v2(Bucket=lb, StartAfter="photos/2025/02.jpg")
    assert keys_of(page) == [k for k in KEYS if k.encode() > b"photos/2025/02.jpg"]
    assert page["StartAfter"] == "photos/2025/02.jpg"
    # start-after need not be an existing key
    page = s3.list_objects_v2(Bucket=lb, StartAfter="photos/2024/05.zzz", MaxKeys=3)
    assert keys_of(page) == ["photos/2024/06.jpg", "photos/2024/07.jpg", "photos/2024/08.jpg"]
    # continuation token wins over start-after on later pages
    page2 = s3.list_objects_v2(Bucket=lb, StartAfter="photos/2024/05.zzz", MaxKeys=3,
                               ContinuationToken=page["NextContinuationToken"])
    assert keys_of(page2) == ["photos/2024/09.jpg", "photos/2025/00.jpg", "photos/2025/01.jpg"]


def test_list_v1_paging_marker(s3, lb):
    got, marker, pages = [], "", 0
    while True:
        page = s3.list_objects(Bucket=lb, MaxKeys=7, Marker=marker)
        pages += 1
        assert len(keys_of(page)) <= 7
        got += keys_of(page)
        if not page["IsTruncated"]:
            break
        # without a delimiter S3 may omit NextMarker: the last key is the marker
        marker = page.get("NextMarker") or keys_of(page)[-1]
        assert pages < 20
    assert got == KEYS


@pytest.mark.moto_deviates(reason="moto's v1 listing with a delimiter ignores max-keys for prefixes "
                                  "and returns an opaque NextMarker")
def test_list_v1_paging_with_delimiter_next_marker(s3, lb):
    entries, marker = [], ""
    while True:
        page = s3.list_objects(Bucket=lb, MaxKeys=2, Delimiter="/", Marker=marker)
        entries += keys_of(page) + prefixes_of(page)
        if not page["IsTruncated"]:
            break
        marker = page["NextMarker"]  # required when a delimiter was given
        assert marker
    full = s3.list_objects(Bucket=lb, Delimiter="/")
    assert sorted(entries) == sorted(keys_of(full) + prefixes_of(full))
    assert len(entries) == len(set(entries))


def test_list_v1_marker(s3, lb):
    page = s3.list_objects(Bucket=lb, Marker="root1")
    assert keys_of(page) == [k for k in KEYS if k.encode() > b"root1"]
    if not IS_MOTO:  # moto omits the <Marker> echo that S3 always sends
        assert page["Marker"] == "root1"


@pytest.mark.moto_deviates(reason="moto does not validate max-keys")
@pytest.mark.parametrize("query", ["max-keys=-1", "max-keys=abc", "list-type=2&max-keys=-1",
                                   "list-type=2&max-keys=abc"])
def test_list_invalid_max_keys(server, lb, query):
    r = raw_request(server.endpoint, "GET", f"/{lb}", query=query)
    assert r.status == 400, r
    assert r.error_code == "InvalidArgument", r


def test_list_max_keys_above_1000_is_capped(s3, lb):
    page = s3.list_objects_v2(Bucket=lb, MaxKeys=5000)
    assert keys_of(page) == KEYS
    assert page["MaxKeys"] in (1000, 5000)


def _xml(body):
    return ET.fromstring(body)


def test_list_encoding_type_url_raw(server, lb):
    # raw request, so that no SDK decodes the keys for us
    q = "list-type=2&encoding-type=url&prefix=" + urllib.parse.quote("", safe="")
    r = raw_request(server.endpoint, "GET", f"/{lb}", query=q)
    assert r.status == 200, r
    root = _xml(r.body)
    assert root.findtext(f"{S3_NS}EncodingType") == "url"
    raw_keys = [c.findtext(f"{S3_NS}Key") for c in root.findall(f"{S3_NS}Contents")]
    for rk in raw_keys:
        assert " " not in rk and all(ord(ch) < 128 for ch in rk), rk
    assert [urllib.parse.unquote_plus(k) for k in raw_keys] == KEYS


@pytest.mark.moto_deviates(reason="moto does not URL-encode CommonPrefixes with encoding-type=url")
def test_list_encoding_type_url_prefixes_raw(server, lb):
    q = "delimiter=%2F&encoding-type=url"  # v1
    r = raw_request(server.endpoint, "GET", f"/{lb}", query=q)
    assert r.status == 200, r
    root = _xml(r.body)
    cps = [c.findtext(f"{S3_NS}Prefix") for c in root.findall(f"{S3_NS}CommonPrefixes")]
    assert [urllib.parse.unquote_plus(p) for p in cps] == ["a/", "docs/", "photos/", "ünïcode/"]
    assert "ünïcode/" not in cps  # it was encoded


def test_list_xml_special_characters_without_encoding(s3, bucket, server):
    keys = sorted(["a&b", "c<d>e", "quote\"'", "tab\tkey"], key=str.encode)
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    r = raw_request(server.endpoint, "GET", f"/{bucket}", query="list-type=2")
    assert r.status == 200, r
    root = _xml(r.body)  # must be well-formed XML
    assert [c.findtext(f"{S3_NS}Key") for c in root.findall(f"{S3_NS}Contents")] == keys
    # and boto3 (which asks for encoding-type=url) agrees
    assert keys_of(s3.list_objects_v2(Bucket=bucket)) == keys


def test_list_byte_order(s3, bucket):
    # (no key is also a "directory" of another: a file:// under store could not hold both)
    keys = ["a", "B", "é", "z", "m/x", "m-x", "m0", "_", "~", "A"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    assert keys_of(s3.list_objects_v2(Bucket=bucket)) == sorted(keys, key=str.encode)


def test_list_after_delete_and_overwrite(s3, bucket):
    for k in ("k1", "k2", "k3"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"12345")
    s3.delete_object(Bucket=bucket, Key="k2")
    s3.put_object(Bucket=bucket, Key="k3", Body=b"1")
    page = s3.list_objects_v2(Bucket=bucket)
    assert keys_of(page) == ["k1", "k3"]
    assert [o["Size"] for o in page["Contents"]] == [5, 1]


def test_list_empty_bucket(s3, bucket):
    page = s3.list_objects_v2(Bucket=bucket)
    assert page["KeyCount"] == 0
    assert "Contents" not in page
    assert page["IsTruncated"] is False


def test_list_object_versions_unversioned(s3, lb):
    resp = s3.list_object_versions(Bucket=lb, Prefix="docs/")
    versions = resp.get("Versions", [])
    assert [v["Key"] for v in versions] == [k for k in KEYS if k.startswith("docs/")]
    for v in versions:
        assert v["VersionId"] == "null"
        assert v["IsLatest"] is True
        assert v["Size"] == len(v["Key"].encode())
    assert not resp.get("DeleteMarkers")


def test_list_object_versions_delimiter(s3, lb):
    resp = s3.list_object_versions(Bucket=lb, Delimiter="/", Prefix="photos/")
    assert prefixes_of(resp) == ["photos/2024/", "photos/2025/"]
    assert [v["Key"] for v in resp.get("Versions", [])] == ["photos/readme"]


def test_list_missing_bucket(s3):
    expect_error(s3.list_objects_v2, Bucket=unique_bucket_name("nosuch"), code="NoSuchBucket", status=404)
