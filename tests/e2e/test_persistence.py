"""Reservoir's write modes and persistence to the file:// under store: the
x-reservoir-persist-state header, the admin sync barrier, held-back persistence
(read/list-after-write, tombstones hiding under-store objects), through,
cache-through and transient modes, per-prefix policies, and restart."""

import json
import signal
import socket
import threading
import time
import urllib.request

import pytest

from conftest import (SECRET_KEY, MiB, PERSIST_STATES, delete_bucket_quietly, expect_error, md5_hex,
                      multipart_etag, persist_state, quote_key, rand_bytes, raw_request,
                      sign_headers, unique_bucket_name)

pytestmark = pytest.mark.reservoir_only

UNPERSISTED = {"dirty", "persisting"}


def ufs_files(srv, bucket) -> dict:
    """{key: bytes} of every file under <ufs>/<bucket>/ (metadata sidecars live elsewhere)."""
    root = srv.ufs_path(bucket)
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def keys_of(page):
    return [o["Key"] for o in page.get("Contents", [])]


def state_of(s3, bucket, key) -> str:
    st = persist_state(s3.head_object(Bucket=bucket, Key=key))
    assert st in PERSIST_STATES, f"{key}: x-reservoir-persist-state is {st!r}"
    return st


@pytest.fixture
def new_bucket():
    """Create a fresh bucket on a given client, delete it afterwards."""
    made = []

    def make(client, hint="b"):
        name = unique_bucket_name(hint)
        client.create_bucket(Bucket=name)
        made.append((client, name))
        return name

    yield make
    for client, name in made:
        delete_bucket_quietly(client, name)


def put_multipart(s3, bucket, key, parts):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i, Body=p)["ETag"]
             for i, p in enumerate(parts, 1)]
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})


# --------------------------------------------------------------------------
# write-back with delay 0s (the module's default server)
# --------------------------------------------------------------------------

def test_persist_state_header_and_sync_barrier(server, s3, bucket):
    objs = {
        "plain.txt": b"hello reservoir",
        "nested/dir/deep.bin": rand_bytes(300_000),
        "unicode ü/ключ ✓.txt": "ünïcødé".encode(),
        "empty": b"",
        "space key +plus": b"spaces",
    }
    for k, v in objs.items():
        resp = s3.put_object(Bucket=bucket, Key=k, Body=v)
        assert resp["ETag"] == f'"{md5_hex(v)}"'
    for k, v in objs.items():
        got = s3.get_object(Bucket=bucket, Key=k)
        assert got["Body"].read() == v
        assert persist_state(got) in {"dirty", "persisting", "persisted"}
        assert state_of(s3, bucket, k) in {"dirty", "persisting", "persisted"}
    doc = server.sync(bucket + "/")
    assert doc["parked"] == []
    for k in objs:
        assert state_of(s3, bucket, k) == "persisted"
        assert persist_state(s3.get_object(Bucket=bucket, Key=k)) == "persisted"
    assert ufs_files(server, bucket) == objs


def test_multipart_and_copy_persist(server, s3, bucket):
    parts = [rand_bytes(5 * MiB), rand_bytes(5 * MiB), rand_bytes(777)]
    resp = put_multipart(s3, bucket, "mp/object", parts)
    assert resp["ETag"] == f'"{multipart_etag(parts)}"'
    s3.copy_object(Bucket=bucket, Key="mp/copy", CopySource={"Bucket": bucket, "Key": "mp/object"})
    server.sync(bucket + "/")
    files = ufs_files(server, bucket)
    whole = b"".join(parts)
    assert sorted(files) == ["mp/copy", "mp/object"]
    assert md5_hex(files["mp/object"]) == md5_hex(whole)
    assert md5_hex(files["mp/copy"]) == md5_hex(whole)
    # the ETag is kept after persistence
    assert s3.head_object(Bucket=bucket, Key="mp/object")["ETag"] == f'"{multipart_etag(parts)}"'


def test_overwrite_and_delete_reach_the_under_store(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"version 1")
    s3.put_object(Bucket=bucket, Key="b", Body=b"to be deleted")
    server.sync(bucket + "/")
    assert ufs_files(server, bucket) == {"a": b"version 1", "b": b"to be deleted"}
    s3.put_object(Bucket=bucket, Key="a", Body=b"version 2, longer")
    s3.delete_object(Bucket=bucket, Key="b")
    expect_error(s3.get_object, Bucket=bucket, Key="b", code="NoSuchKey")
    server.sync(bucket + "/")
    assert ufs_files(server, bucket) == {"a": b"version 2, longer"}
    assert keys_of(s3.list_objects_v2(Bucket=bucket)) == ["a"]


def test_rapid_overwrites_end_in_last_version(server, s3, bucket):
    for i in range(20):
        s3.put_object(Bucket=bucket, Key="hot", Body=f"version {i}".encode() * (i + 1))
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="gone")
    server.sync(bucket + "/")
    assert ufs_files(server, bucket) == {"hot": b"version 19" * 20}
    assert s3.get_object(Bucket=bucket, Key="hot")["Body"].read() == b"version 19" * 20


def test_sync_on_prefix(server, s3, bucket):
    for k in ("sub/1", "sub/2", "other/3"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    doc = server.sync(f"{bucket}/sub/")
    assert doc["done"] is True and doc["pending"] == 0
    for k in ("sub/1", "sub/2"):
        assert state_of(s3, bucket, k) == "persisted"
        assert server.ufs_path(bucket, k).read_bytes() == k.encode()
    server.sync(f"{bucket}/")
    assert server.ufs_path(bucket, "other/3").read_bytes() == b"other/3"


def test_sync_on_empty_prefix_returns_done(server, bucket):
    doc = server.sync(f"{bucket}/nothing-here/", timeout=10)
    assert doc["pending"] == 0


def test_sync_requires_admin_auth(server, bucket):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"{server.admin_endpoint}/admin/v1/sync?prefix={bucket}/&wait=true&timeout=5",
                                 data=b"", method="POST", headers={"Authorization": "Bearer wrong"})
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=30)
    assert ei.value.code in (401, 403)


def test_metadata_kept_after_persist(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="m", Body=b"meta", ContentType="text/x-meta",
                  Metadata={"k1": "v1"}, Tagging="t=1")
    server.sync(bucket + "/")
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["ContentType"] == "text/x-meta"
    assert head["Metadata"] == {"k1": "v1"}
    assert s3.get_object_tagging(Bucket=bucket, Key="m")["TagSet"] == [{"Key": "t", "Value": "1"}]
    assert server.ufs_path(bucket, "m").read_bytes() == b"meta"


def test_under_store_objects_are_served(server, s3, bucket):
    """Objects that exist only in the under store are listed and read through."""
    root = server.ufs_path(bucket)
    root.mkdir(parents=True, exist_ok=True)
    (root / "pre/existing").parent.mkdir(parents=True, exist_ok=True)
    (root / "pre/existing").write_bytes(b"from the ufs")
    assert s3.get_object(Bucket=bucket, Key="pre/existing")["Body"].read() == b"from the ufs"
    assert state_of(s3, bucket, "pre/existing") == "persisted"
    assert s3.head_object(Bucket=bucket, Key="pre/existing")["ContentLength"] == 12
    assert keys_of(s3.list_objects_v2(Bucket=bucket)) == ["pre/existing"]
    rng = s3.get_object(Bucket=bucket, Key="pre/existing", Range="bytes=5-7")
    assert rng["Body"].read() == b"the"


# --------------------------------------------------------------------------
# write-back with persistence held back (delay 1h)
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def held(reservoir_factory):
    return reservoir_factory(delay="1h")


@pytest.fixture(scope="module")
def held_s3(held):
    return held.client()


def test_held_read_after_write(held, held_s3, new_bucket):
    b = new_bucket(held_s3, "held")
    data = rand_bytes(200_000)
    held_s3.put_object(Bucket=b, Key="k", Body=data, ContentType="application/x-held")
    got = held_s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == data
    assert persist_state(got) == "dirty"
    assert state_of(held_s3, b, "k") == "dirty"
    assert got["ContentType"] == "application/x-held"
    assert not held.ufs_path(b, "k").exists()
    # overwrite while dirty: the newest version is served
    held_s3.put_object(Bucket=b, Key="k", Body=b"newer")
    assert held_s3.get_object(Bucket=b, Key="k")["Body"].read() == b"newer"
    assert not held.ufs_path(b, "k").exists()


def test_held_list_after_write(held, held_s3, new_bucket):
    b = new_bucket(held_s3, "held")
    keys = sorted(f"d{i % 3}/k{i:02d}" for i in range(12))
    for k in keys:
        held_s3.put_object(Bucket=b, Key=k, Body=k.encode())
    assert keys_of(held_s3.list_objects_v2(Bucket=b)) == keys
    assert keys_of(held_s3.list_objects(Bucket=b)) == keys
    page = held_s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["d0/", "d1/", "d2/"]
    assert ufs_files(held, b) == {}


def test_held_list_merges_under_store_and_dirty(held, held_s3, new_bucket):
    b = new_bucket(held_s3, "held")
    root = held.ufs_path(b)
    root.mkdir(parents=True, exist_ok=True)
    ufs_keys = ["a/ufs1", "c/ufs2", "e"]
    for k in ufs_keys:
        (root / k).parent.mkdir(parents=True, exist_ok=True)
        (root / k).write_bytes(b"ufs:" + k.encode())
    dirty_keys = ["b/dirty1", "c/dirty2", "d"]
    for k in dirty_keys:
        held_s3.put_object(Bucket=b, Key=k, Body=b"dirty:" + k.encode())
    everything = sorted(ufs_keys + dirty_keys)
    assert keys_of(held_s3.list_objects_v2(Bucket=b)) == everything
    # paging across the merge
    got, token = [], None
    while True:
        kw = {"Bucket": b, "MaxKeys": 2}
        if token:
            kw["ContinuationToken"] = token
        page = held_s3.list_objects_v2(**kw)
        got += keys_of(page)
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert got == everything
    page = held_s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "b/", "c/"]
    assert keys_of(page) == ["d", "e"]
    sizes = {o["Key"]: o["Size"] for o in held_s3.list_objects_v2(Bucket=b)["Contents"]}
    assert sizes["e"] == len(b"ufs:e") and sizes["d"] == len(b"dirty:d")


def test_held_list_after_delete_hides_under_store_object(held, held_s3, new_bucket):
    b = new_bucket(held_s3, "held")
    root = held.ufs_path(b)
    root.mkdir(parents=True, exist_ok=True)
    (root / "old.txt").write_bytes(b"old content in the ufs")
    (root / "keep.txt").write_bytes(b"keep")
    assert held_s3.get_object(Bucket=b, Key="old.txt")["Body"].read() == b"old content in the ufs"
    assert keys_of(held_s3.list_objects_v2(Bucket=b)) == ["keep.txt", "old.txt"]
    held_s3.delete_object(Bucket=b, Key="old.txt")
    # the under store still has it (deletion is held back) but nobody can see it
    assert (root / "old.txt").read_bytes() == b"old content in the ufs"
    assert keys_of(held_s3.list_objects_v2(Bucket=b)) == ["keep.txt"]
    assert keys_of(held_s3.list_objects(Bucket=b)) == ["keep.txt"]
    expect_error(held_s3.get_object, Bucket=b, Key="old.txt", code="NoSuchKey", status=404)
    expect_error(held_s3.head_object, Bucket=b, Key="old.txt", status=404)
    versions = held_s3.list_object_versions(Bucket=b).get("Versions", [])
    assert [v["Key"] for v in versions] == ["keep.txt"]
    # and a new write of the deleted key is visible again
    held_s3.put_object(Bucket=b, Key="old.txt", Body=b"reborn")
    assert held_s3.get_object(Bucket=b, Key="old.txt")["Body"].read() == b"reborn"
    assert (root / "old.txt").read_bytes() == b"old content in the ufs"


def test_held_delete_objects_hides_under_store_objects(held, held_s3, new_bucket):
    b = new_bucket(held_s3, "held")
    root = held.ufs_path(b)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(5):
        (root / f"f{i}").write_bytes(b"x")
    held_s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": f"f{i}"} for i in range(3)]})
    assert keys_of(held_s3.list_objects_v2(Bucket=b)) == ["f3", "f4"]
    assert sorted(ufs_files(held, b)) == [f"f{i}" for i in range(5)]


def test_held_overwrite_of_under_store_object(held, held_s3, new_bucket):
    b = new_bucket(held_s3, "held")
    root = held.ufs_path(b)
    root.mkdir(parents=True, exist_ok=True)
    (root / "obj").write_bytes(b"old")
    held_s3.put_object(Bucket=b, Key="obj", Body=b"new and dirty")
    got = held_s3.get_object(Bucket=b, Key="obj")
    assert got["Body"].read() == b"new and dirty"
    assert persist_state(got) == "dirty"
    assert (root / "obj").read_bytes() == b"old"
    page = held_s3.list_objects_v2(Bucket=b)
    assert [(o["Key"], o["Size"]) for o in page["Contents"]] == [("obj", len(b"new and dirty"))]


def test_dirty_data_survives_graceful_restart_then_persists(reservoir_factory):
    srv = reservoir_factory(delay="1h")
    c = srv.client()
    b = unique_bucket_name("restart")
    c.create_bucket(Bucket=b)
    objs = {f"k{i}": rand_bytes(1000 * i + 1) for i in range(10)}
    for k, v in objs.items():
        c.put_object(Bucket=b, Key=k, Body=v, Metadata={"n": k})
    c.delete_object(Bucket=b, Key="k0")
    objs.pop("k0")
    srv.restart()
    c = srv.client()
    for k, v in objs.items():
        got = c.get_object(Bucket=b, Key=k)
        assert got["Body"].read() == v
        assert got["Metadata"] == {"n": k}
        assert persist_state(got) == "dirty"
    expect_error(c.head_object, Bucket=b, Key="k0", status=404)
    assert ufs_files(srv, b) == {}
    # restart again with persistence enabled: everything reaches the under store
    srv.restart(delay="0s")
    srv.sync(b + "/")
    assert ufs_files(srv, b) == objs
    c = srv.client()
    assert keys_of(c.list_objects_v2(Bucket=b)) == sorted(objs)


# --------------------------------------------------------------------------
# through / cache-through
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["through", "cache-through"])
def test_synchronous_write_modes(reservoir_factory, mode):
    srv = reservoir_factory(write_mode=mode)
    c = srv.client()
    b = unique_bucket_name(mode)
    c.create_bucket(Bucket=b)
    data = rand_bytes(123_456)
    c.put_object(Bucket=b, Key="dir/obj", Body=data)
    # acknowledged only after the under store committed it
    assert srv.ufs_path(b, "dir/obj").read_bytes() == data
    assert state_of(c, b, "dir/obj") == "persisted"
    got = c.get_object(Bucket=b, Key="dir/obj")
    assert got["Body"].read() == data
    assert persist_state(got) == "persisted"
    assert keys_of(c.list_objects_v2(Bucket=b)) == ["dir/obj"]
    parts = [rand_bytes(5 * MiB), b"tail"]
    put_multipart(c, b, "mp", parts)
    assert md5_hex(srv.ufs_path(b, "mp").read_bytes()) == md5_hex(b"".join(parts))
    assert state_of(c, b, "mp") == "persisted"
    c.delete_object(Bucket=b, Key="dir/obj")
    assert not srv.ufs_path(b, "dir/obj").exists()
    expect_error(c.get_object, Bucket=b, Key="dir/obj", code="NoSuchKey")
    doc = srv.sync(b + "/", timeout=10)
    assert doc["pending"] == 0


# --------------------------------------------------------------------------
# transient
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def transient(reservoir_factory):
    return reservoir_factory(write_mode="transient")


def test_transient_never_persisted(transient):
    c = transient.client()
    b = unique_bucket_name("transient")
    c.create_bucket(Bucket=b)
    objs = {"scratch/1": rand_bytes(10_000), "scratch/2": b"two"}
    for k, v in objs.items():
        c.put_object(Bucket=b, Key=k, Body=v)
    parts = [rand_bytes(5 * MiB), b"end"]
    put_multipart(c, b, "scratch/mp", parts)
    for k, v in objs.items():
        got = c.get_object(Bucket=b, Key=k)
        assert got["Body"].read() == v
        assert persist_state(got) == "transient"
    assert state_of(c, b, "scratch/mp") == "transient"
    doc = transient.sync(b + "/", timeout=10)
    assert doc["pending"] == 0
    assert ufs_files(transient, b) == {}
    assert keys_of(c.list_objects_v2(Bucket=b)) == ["scratch/1", "scratch/2", "scratch/mp"]
    c.delete_object(Bucket=b, Key="scratch/1")
    expect_error(c.get_object, Bucket=b, Key="scratch/1", code="NoSuchKey")
    assert ufs_files(transient, b) == {}


@pytest.mark.parametrize("key", ["a/./b", "a/../b", "a//b", "./x", "../x", "x/..", "..", "/lead",
                                 "folder-marker/"])
def test_transient_accepts_dot_segment_keys(transient, key):
    """Keys that cannot be file paths are fine where nothing is persisted."""
    c = transient.client()
    b = unique_bucket_name("dots")
    c.create_bucket(Bucket=b)
    try:
        path = f"/{b}/" + quote_key(key)
        r = raw_request(transient.endpoint, "PUT", path, body=key.encode())
        assert r.status == 200, r
        r = raw_request(transient.endpoint, "GET", path)
        assert r.status == 200 and r.body == key.encode(), r
        assert r.headers.get("x-reservoir-persist-state") == "transient"
        assert keys_of(c.list_objects_v2(Bucket=b)) == [key]
        r = raw_request(transient.endpoint, "DELETE", path)
        assert r.status == 204, r
        assert keys_of(c.list_objects_v2(Bucket=b)) == []
        assert not (transient.ufs_dir / "b").exists() and not (transient.ufs_dir / "x").exists()
    finally:
        delete_bucket_quietly(c, b)


def test_policy_prefix_transient(reservoir_factory):
    b = unique_bucket_name("policy")
    srv = reservoir_factory(policies=[{"path": f"/{b}/tmp/", "write_mode": "transient"}])
    c = srv.client()
    c.create_bucket(Bucket=b)
    c.put_object(Bucket=b, Key="tmp/scratch", Body=b"scratch")
    c.put_object(Bucket=b, Key="keep/me", Body=b"durable")
    c.put_object(Bucket=b, Key="tmpfile", Body=b"not under tmp/")
    assert state_of(c, b, "tmp/scratch") == "transient"
    assert state_of(c, b, "keep/me") in {"dirty", "persisting", "persisted"}
    srv.sync(b + "/")
    assert state_of(c, b, "keep/me") == "persisted"
    assert state_of(c, b, "tmpfile") == "persisted"
    assert ufs_files(srv, b) == {"keep/me": b"durable", "tmpfile": b"not under tmp/"}
    assert c.get_object(Bucket=b, Key="tmp/scratch")["Body"].read() == b"scratch"
    assert keys_of(c.list_objects_v2(Bucket=b)) == ["keep/me", "tmp/scratch", "tmpfile"]


def test_sigterm_is_graceful(reservoir_factory):
    srv = reservoir_factory()
    c = srv.client()
    b = unique_bucket_name("sigterm")
    c.create_bucket(Bucket=b)
    c.put_object(Bucket=b, Key="k", Body=b"before stop")
    assert srv.stop() == 0, f"exit code after SIGTERM is not 0; log:\n{srv.log_tail()}"
    srv.start()
    c = srv.client()
    assert c.get_object(Bucket=b, Key="k")["Body"].read() == b"before stop"
    srv.sync(b + "/")
    assert srv.ufs_path(b, "k").read_bytes() == b"before stop"


def _with_a_dead_backend(reservoir_factory, drain_timeout: str, bucket: str):
    """A server whose S3 backend is down (a port nothing listens on), with one dirty
    object `bucket`/k = b"kept"."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    srv = reservoir_factory(mounts=[{"path": "/", "ufs": "s3://gone/p", "endpoint": f"http://127.0.0.1:{dead}",
                                     "access_key": "k", "secret_key": "s"}],
                            server_options={"drain_timeout": drain_timeout})
    s3 = srv.client()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    return srv


def test_stop_does_not_wait_for_a_sync_barrier(reservoir_factory):
    """SIGTERM while an admin sync barrier waits (up to its timeout, an hour by default)
    for a write its under store cannot take: the barrier answers at once with the write
    still pending, the server stops, and the write is still there, dirty, after the
    restart. (It used to hold the shutdown: the process had to be killed.)"""
    srv = _with_a_dead_backend(reservoir_factory, "2s", "waits")
    answered = []

    def barrier():
        req = urllib.request.Request(srv.admin_endpoint + "/admin/v1/sync?prefix=waits/&wait=true&timeout=3600",
                                     data=b"", method="POST",
                                     headers={"Authorization": f"Bearer {SECRET_KEY}"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                answered.append((r.status, json.loads(r.read())))
        except Exception as e:  # noqa: BLE001 - the server may close it while stopping
            answered.append(repr(e))

    t = threading.Thread(target=barrier)
    t.start()
    time.sleep(1.0)
    start = time.monotonic()
    code = srv.stop(timeout=60)
    took = time.monotonic() - start
    t.join(60)
    assert code == 0, (code, srv.log_tail())
    assert took < 20, f"stopping took {took:.1f}s with a sync barrier waiting"
    # the barrier answered before the stop, with the write still pending
    assert len(answered) == 1 and answered[0][0] == 200, answered
    assert answered[0][1]["done"] is False and answered[0][1]["pending"] == 1, answered
    srv.start()
    got = srv.client().get_object(Bucket="waits", Key="k")
    assert got["Body"].read() == b"kept"
    assert persist_state(got) in UNPERSISTED


def test_stop_does_not_wait_for_the_drain_rate_limit(reservoir_factory):
    """A mount drained at 64 KiB/s: after a 1 MiB object the next upload waits ~16 s for
    the byte budget. SIGTERM stops the server without waiting for it (the object stays
    dirty and goes after the restart)."""
    srv = reservoir_factory(start=False, server_options={"drain_timeout": "2s"})
    srv.mounts = [{"path": "/", "ufs": f"file://{srv.ufs_dir}", "persist": {"max_bytes_per_sec": 64 * 1024}}]
    srv.start()
    c = srv.client()
    b = unique_bucket_name("ratestop")
    c.create_bucket(Bucket=b)
    c.put_object(Bucket=b, Key="big", Body=b"b" * MiB)
    time.sleep(0.5)  # its upload takes the budget: the next one waits
    c.put_object(Bucket=b, Key="next", Body=b"waits for the budget")
    time.sleep(0.5)
    start = time.monotonic()
    code = srv.stop(timeout=60)
    took = time.monotonic() - start
    assert code == 0, (code, srv.log_tail())
    assert took < 10, f"stopping took {took:.1f}s with an upload waiting for the byte budget"
    srv.start()
    got = srv.client().get_object(Bucket=b, Key="next")
    assert got["Body"].read() == b"waits for the budget"


def test_a_second_sigterm_stops_at_once(reservoir_factory):
    """A drain held by a slow request (a PUT whose body never comes, with a long
    drain_timeout) ends at a second SIGTERM: the process exits at once, and nothing
    acknowledged is lost."""
    srv = _with_a_dead_backend(reservoir_factory, "300s", "twice")
    # A request that keeps the drain waiting: a body announced and never sent.
    port = int(srv.endpoint.rsplit(":", 1)[1])
    headers = sign_headers("PUT", f"{srv.endpoint}/twice/slow", {"Host": f"127.0.0.1:{port}", "Content-Length": "1000"},
                           payload_hash="UNSIGNED-PAYLOAD")
    slow = socket.create_connection(("127.0.0.1", port), timeout=30)
    slow.sendall(("PUT /twice/slow HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                  + "\r\n").encode() + b"ab")
    time.sleep(0.5)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert srv.alive(), "the first signal should drain, not stop"
    start = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(20)
    assert time.monotonic() - start < 10
    slow.close()
    assert "again: stopping at once" in srv.log_path.read_text()
    srv.start()
    got = srv.client().get_object(Bucket="twice", Key="k")
    assert got["Body"].read() == b"kept"
