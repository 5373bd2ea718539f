"""The read cache: read-through by page with single flight, the metadata cache and
external changes, tiers and eviction, pin, TTL, load and free, across restarts.

Reservoir mounts /rc on s3://rcbucket/<prefix> of moto_server through
tests/tools/slow_s3_proxy.py; objects are put straight into moto (another writer), read
through Reservoir, and the backend traffic is counted twice: by the proxy (requests and
bytes it forwarded) and by Reservoir's reservoir_cache_backend_read_bytes_total.

    bash tests/e2e/run.sh tests/e2e/test_read_cache.py
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import time

import pytest
from botocore.exceptions import ClientError

from conftest import BACKEND_KEY, ReservoirServer, err_status, free_port, metric

pytestmark = pytest.mark.reservoir_only

BUCKET = "rcbucket"
MiB = 1 << 20


@pytest.fixture(scope="module")
def backend(slow_s3_backend):
    slow_s3_backend.create_bucket(BUCKET)
    return slow_s3_backend


@pytest.fixture
def make_server(tmp_path, backend):
    started: list[ReservoirServer] = []

    def make(prefix: str, cache_toml: str = "", mount_kw: dict | None = None, extra_mounts=(),
             **kw) -> ReservoirServer:
        mount = backend.mount("/rc", f"s3://{BUCKET}/{prefix}", **(mount_kw or {}))
        extra = "[cache]\npage_size = \"1MiB\"\nttl_check_interval = \"200ms\"\n" + cache_toml
        srv = ReservoirServer(tmp_path / f"rsv{len(started)}", mounts=[mount, *extra_mounts],
                              extra_toml=extra, **kw)
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        srv.stop()


def put_direct(backend, key: str, data: bytes, **kw) -> None:
    backend.direct.put_object(Bucket=BUCKET, Key=key, Body=data, **kw)


def backend_bytes(srv) -> int:
    return int(metric(srv.metrics(), "reservoir_cache_backend_read_bytes_total") or 0)


def proxy_gets(backend) -> int:
    return int(backend.proxy.stats().get("forwarded_by_method", {}).get("GET", 0))


def stat(srv, key: str) -> dict:
    r = srv.cli("stat", f"rc/{key}", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def blob(n: int, seed: int) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32) + b"x" * (n % 32)


def test_ranged_reads_fetch_only_the_pages_they_touch(backend, make_server):
    backend.reset(latency_ms=5)
    data = os.urandom(20 * MiB)
    put_direct(backend, "pages/big", data)
    srv = make_server("pages")
    s3 = srv.client()
    backend.proxy.post("/reset-stats")
    ranges = [(5 * MiB + 100, 5 * MiB + 199), (12 * MiB - 10, 12 * MiB + 10), (0, 0)]  # pages 5, 11-12, 0
    for first, last in ranges:
        body = s3.get_object(Bucket="rc", Key="big", Range=f"bytes={first}-{last}")["Body"].read()
        assert body == data[first:last + 1]
    fetched = backend_bytes(srv)
    served = sum(last - first + 1 for first, last in ranges)
    print(f"[ranged reads] served {served} bytes, fetched {fetched} bytes from the backend "
          f"(proxy sent {backend.proxy.stats()['bytes_to_clients']} bytes)")
    assert fetched == 4 * MiB, "exactly the 4 touched pages come from the backend"
    assert backend.proxy.stats()["bytes_to_clients"] < 4 * MiB + 64 * 1024
    st = stat(srv, "big")
    assert st["pages_cached"] == 4 and st["pages_total"] == 20
    # The same reads again: no backend request at all.
    gets = proxy_gets(backend)
    for first, last in ranges:
        body = s3.get_object(Bucket="rc", Key="big", Range=f"bytes={first}-{last}")["Body"].read()
        assert body == data[first:last + 1]
    assert backend_bytes(srv) == fetched
    assert proxy_gets(backend) == gets
    # A whole read streams the rest and is byte-exact.
    whole = s3.get_object(Bucket="rc", Key="big")["Body"].read()
    assert hashlib.md5(whole).hexdigest() == hashlib.md5(data).hexdigest()
    assert backend_bytes(srv) == 20 * MiB
    assert stat(srv, "big")["pages_cached"] == 20


def test_concurrent_misses_make_one_backend_fetch_per_page(backend, make_server):
    backend.reset(latency_ms=50)
    data = os.urandom(6 * MiB + 123)
    put_direct(backend, "sf/obj", data)
    srv = make_server("sf")
    backend.proxy.post("/reset-stats")

    def read(_):
        return srv.client().get_object(Bucket="rc", Key="obj")["Body"].read()

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        bodies = list(ex.map(read, range(8)))
    assert all(b == data for b in bodies)
    assert backend_bytes(srv) == len(data), "every page fetched once for 8 readers"
    assert proxy_gets(backend) <= 7  # one ranged GET per run of pages, never one per reader
    hits = metric(srv.metrics(), "reservoir_cache_hits_total", unit="page")
    misses = metric(srv.metrics(), "reservoir_cache_misses_total")
    assert misses == 7 and hits >= 1


def test_external_change_is_served_fresh_after_metadata_ttl(backend, make_server):
    backend.reset(latency_ms=0)
    put_direct(backend, "ext/k", b"version one", ContentType="text/plain")
    srv = make_server("ext", mount_kw={"metadata_ttl": "1s"})
    s3 = srv.client()
    got = s3.get_object(Bucket="rc", Key="k")
    assert got["Body"].read() == b"version one" and got["ContentType"] == "text/plain"
    put_direct(backend, "ext/k", b"version two, longer")  # another writer, behind Reservoir's back
    time.sleep(1.3)
    assert s3.get_object(Bucket="rc", Key="k")["Body"].read() == b"version two, longer"
    assert s3.head_object(Bucket="rc", Key="k")["ContentLength"] == len(b"version two, longer")
    # Same size, other bytes: the ETag tells.
    put_direct(backend, "ext/k", b"version TWO, longer")
    time.sleep(1.3)
    assert s3.get_object(Bucket="rc", Key="k")["Body"].read() == b"version TWO, longer"
    # Deleted behind Reservoir's back: 404 after the TTL.
    backend.direct.delete_object(Bucket=BUCKET, Key="ext/k")
    time.sleep(1.3)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="rc", Key="k")
    assert err_status(e.value) == 404
    assert metric(srv.metrics(), "reservoir_cache_stale_drops_total") >= 3


def test_without_metadata_ttl_the_cache_is_trusted(backend, make_server):
    backend.reset(latency_ms=0)
    put_direct(backend, "trust/k", b"cached")
    srv = make_server("trust")
    s3 = srv.client()
    assert s3.get_object(Bucket="rc", Key="k")["Body"].read() == b"cached"
    backend.proxy.post("/reset-stats")
    for _ in range(5):
        assert s3.get_object(Bucket="rc", Key="k")["Body"].read() == b"cached"
    assert backend.proxy.stats()["forwarded"] == 0, "hits make no backend request"


def test_load_free_and_stat(backend, make_server):
    backend.reset(latency_ms=0)
    objs = {f"ld/o{i}": blob(300_000 + i, i) for i in range(12)}
    for k, v in objs.items():
        put_direct(backend, f"lf/{k}", v)
    srv = make_server("lf")
    r = srv.cli("load", "rc/ld/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "loaded 12 object(s)" in r.stdout
    backend.proxy.post("/reset-stats")
    s3 = srv.client()
    for k, v in objs.items():
        assert s3.get_object(Bucket="rc", Key=k)["Body"].read() == v
    assert backend.proxy.stats()["forwarded"] == 0, "everything was prefetched"
    # The loaded pages survive a restart.
    srv.restart()
    s3 = srv.client()
    backend.proxy.post("/reset-stats")
    for k, v in objs.items():
        assert s3.get_object(Bucket="rc", Key=k)["Body"].read() == v
    assert backend.proxy.stats()["forwarded"] == 0, "the cache came back from disk"
    st = stat(srv, "ld/o3")
    assert st["cached_bytes"] == st["size"] and st["pages_cached"] == st["pages_total"]
    # A dirty object under the prefix is refused, clearly.
    backend.proxy.outage("refuse")
    s3.put_object(Bucket="rc", Key="ld/dirty", Body=b"not yet persisted")
    r = srv.cli("free", "rc/ld/")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "freed 12 object(s)" in r.stdout
    assert "ld/dirty (not persisted yet)" in r.stdout
    assert stat(srv, "ld/o3")["cached_bytes"] == 0
    backend.proxy.outage("off")
    # Freed data is read through again, intact.
    assert s3.get_object(Bucket="rc", Key="ld/o3")["Body"].read() == objs["ld/o3"]
    assert s3.get_object(Bucket="rc", Key="ld/dirty")["Body"].read() == b"not yet persisted"
    srv.sync("rc/")


def test_eviction_keeps_pinned_and_dirty_data_within_quota(backend, make_server, tmp_path):
    backend.reset(latency_ms=0)
    tier = tmp_path / "tier0"
    # /dq persists to a port nobody listens on: its writes stay dirty.
    unreachable = {"path": "/dq", "ufs": f"s3://{BUCKET}/dq", "endpoint": f"http://127.0.0.1:{free_port()}",
                   "access_key": BACKEND_KEY, "secret_key": BACKEND_KEY}
    srv = make_server("ev", cache_toml=f"eviction = \"lru\"\n\n[[tier]]\nmedium = \"ssd\"\n"
                                        f"path = \"{tier}\"\nquota = \"8MiB\"\n", extra_mounts=[unreachable])
    s3 = srv.client()
    r = srv.cli("pin", "rc/pinned/")
    assert r.returncode == 0, r.stderr
    pinned = {f"pinned/p{i}": blob(MiB, 100 + i) for i in range(2)}
    for k, v in pinned.items():
        s3.put_object(Bucket="rc", Key=k, Body=v)
    dirty = {f"d{i}": blob(MiB, 200 + i) for i in range(2)}
    for k, v in dirty.items():
        s3.put_object(Bucket="dq", Key=k, Body=v)
    # 12 MiB of clean data read through an 8 MiB tier.
    clean = {f"clean/c{i}": blob(MiB, 300 + i) for i in range(12)}
    for k, v in clean.items():
        put_direct(backend, f"ev/{k}", v)
    srv.sync("rc/pinned/")
    for k, v in clean.items():
        assert s3.get_object(Bucket="rc", Key=k)["Body"].read() == v
        time.sleep(0.06)  # let the evictor run ahead
    time.sleep(0.5)
    m = srv.metrics()
    used = metric(m, "reservoir_tier_used_bytes", tier="0", medium="ssd")
    assert used <= 8 * MiB + MiB, f"tier usage {used} over its quota"
    assert (metric(m, "reservoir_cache_evictions_total", tier="0", reason="capacity") or 0) >= 4
    for k in pinned:
        assert stat(srv, k)["cached_bytes"] == MiB, f"pinned {k} was evicted"
    for k in dirty:
        st = json.loads(srv.cli("stat", f"dq/{k}", "--json").stdout)
        assert st["state"] in ("dirty", "persisting") and st["cached_bytes"] == MiB
    # The oldest clean objects went first (LRU), the newest stayed.
    assert stat(srv, "clean/c0")["cached_bytes"] == 0
    assert stat(srv, "clean/c11")["cached_bytes"] == MiB
    # Everything still reads back intact.
    for k, v in {**pinned, **clean}.items():
        assert s3.get_object(Bucket="rc", Key=k)["Body"].read() == v
    for k, v in dirty.items():
        assert s3.get_object(Bucket="dq", Key=k)["Body"].read() == v


def test_ttl_free_and_delete_and_pin_survive_a_restart(backend, make_server):
    backend.reset(latency_ms=0)
    srv = make_server("ttl")
    assert srv.cli("ttl", "rc/tf/", "2s", "--action", "free").returncode == 0
    assert srv.cli("ttl", "rc/td/", "2s", "--action", "delete").returncode == 0
    assert srv.cli("pin", "rc/pp/").returncode == 0
    srv.restart()  # the rules are kept in the index
    s3 = srv.client()
    rules = json.loads(srv.admin("GET", "/admin/v1/rules")[1])["rules"]
    assert {r["path"] for r in rules} == {"/rc/tf/", "/rc/td/", "/rc/pp/"}
    assert stat(srv, "pp/x")["pinned"] is True
    s3.put_object(Bucket="rc", Key="tf/a", Body=b"free me")
    s3.put_object(Bucket="rc", Key="td/a", Body=b"delete me")
    srv.sync("rc/")
    assert stat(srv, "tf/a")["cached_bytes"] == len(b"free me")
    time.sleep(3)
    # free: gone from the cache, still in the under store and readable.
    assert stat(srv, "tf/a")["state"] == "not cached"
    assert s3.get_object(Bucket="rc", Key="tf/a")["Body"].read() == b"free me"
    # delete: gone everywhere.
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="rc", Key="td/a")
    assert err_status(e.value) == 404
    srv.sync("rc/")
    with pytest.raises(ClientError):
        backend.direct.head_object(Bucket=BUCKET, Key="ttl/td/a")
    assert backend.direct.get_object(Bucket=BUCKET, Key="ttl/tf/a")["Body"].read() == b"free me"
    # unpin and removing a TTL work too.
    assert srv.cli("unpin", "rc/pp/").returncode == 0
    assert stat(srv, "pp/x")["pinned"] is False
    assert srv.cli("ttl", "rc/td/", "0").returncode == 0
    s3.put_object(Bucket="rc", Key="td/b", Body=b"kept")
    time.sleep(2.5)
    assert s3.get_object(Bucket="rc", Key="td/b")["Body"].read() == b"kept"


def test_bad_cache_commands_get_clear_errors(backend, make_server):
    backend.reset(latency_ms=0)
    srv = make_server("bad")
    r = srv.cli("load", "nosuchbucket/x")
    assert r.returncode != 0
    r = srv.cli("ttl", "rc/x/", "soon")
    assert r.returncode != 0 and "bad duration" in r.stderr
    r = srv.cli("stat", "rc")
    assert r.returncode != 0
    r = srv.cli("stat", "rc/absent-key", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "not cached"


@pytest.mark.parametrize("on_full", ["through", "reject"])
def test_a_cache_full_of_dirty_data_follows_on_full(tmp_path, on_full):
    """Capacity full of data that cannot be evicted (dirty, held by a long persist
    delay): the next PUT or CopyObject goes straight to the under store (through),
    or gets 503. A part has no under-store object to go to: 503 either way."""
    ufs = tmp_path / "ufs"
    ufs.mkdir()
    tier = tmp_path / "tier"
    srv = ReservoirServer(tmp_path / "srv", mounts=[{"path": "/", "ufs": f"file://{ufs}", "delay": "1h",
                                                     "on_full": on_full}],
                          extra_toml=f"[[tier]]\nmedium = \"ssd\"\npath = \"{tier}\"\nquota = \"3MiB\"\n")
    srv.start()
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="full")
        held = {f"held{i}": blob(MiB, 400 + i) for i in range(3)}
        for k, v in held.items():
            s3.put_object(Bucket="full", Key=k, Body=v)
        assert not (ufs / "full" / "held0").exists(), "held back by the persist delay"
        extra = blob(MiB, 500)
        if on_full == "reject":
            with pytest.raises(ClientError) as e:
                s3.put_object(Bucket="full", Key="extra", Body=extra)
            assert err_status(e.value) == 503
        else:
            s3.put_object(Bucket="full", Key="extra", Body=extra)
            assert (ufs / "full" / "extra").read_bytes() == extra, "written through at once"
            assert s3.get_object(Bucket="full", Key="extra")["Body"].read() == extra
        copy = {"Bucket": "full", "Key": "copied", "CopySource": {"Bucket": "full", "Key": "held1"}}
        if on_full == "reject":
            with pytest.raises(ClientError) as e:
                s3.copy_object(**copy)
            assert err_status(e.value) == 503
        else:
            s3.copy_object(**copy)
            assert (ufs / "full" / "copied").read_bytes() == held["held1"], "copied through at once"
            assert s3.get_object(Bucket="full", Key="copied")["Body"].read() == held["held1"]
        up = s3.create_multipart_upload(Bucket="full", Key="parts")["UploadId"]
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket="full", Key="parts", UploadId=up, PartNumber=1, Body=blob(MiB, 600))
        assert err_status(e.value) == 503
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(Bucket="full", Key="parts", UploadId=up, PartNumber=1,
                                CopySource={"Bucket": "full", "Key": "held2"})
        assert err_status(e.value) == 503
        s3.abort_multipart_upload(Bucket="full", Key="parts", UploadId=up)
        used = metric(srv.metrics(), "reservoir_tier_used_bytes", tier="0", medium="ssd")
        assert used <= 3 * MiB
        for k, v in held.items():
            assert s3.get_object(Bucket="full", Key=k)["Body"].read() == v
    finally:
        srv.stop()


def test_listings_are_cached_for_metadata_ttl_and_dropped_on_own_changes(backend, make_server):
    backend.reset(latency_ms=0)
    for i in range(3):
        put_direct(backend, f"lst/k{i}", b"x")
    srv = make_server("lst", mount_kw={"metadata_ttl": "2s"})
    s3 = srv.client()

    def keys():
        return [o["Key"] for o in s3.list_objects_v2(Bucket="rc").get("Contents", [])]

    assert keys() == ["k0", "k1", "k2"]
    backend.proxy.post("/reset-stats")
    put_direct(backend, "lst/k3", b"x")  # another writer
    assert keys() == ["k0", "k1", "k2"], "within the TTL the cached listing answers"
    assert backend.proxy.stats()["forwarded"] == 0
    assert metric(srv.metrics(), "reservoir_cache_list_hits_total") >= 1
    time.sleep(2.2)
    assert keys() == ["k0", "k1", "k2", "k3"], "after the TTL the under store is listed again"
    # Reservoir's own delete, once persisted, is never undone by a cached page.
    s3.delete_object(Bucket="rc", Key="k1")
    srv.sync("rc/")
    assert keys() == ["k0", "k2", "k3"]


def test_a_cold_read_is_one_backend_request(backend, make_server):
    backend.reset(latency_ms=0)
    put_direct(backend, "cold/small", b"s" * 10240, ContentType="text/csv", Metadata={"team": "ml"})
    srv = make_server("cold")
    s3 = srv.client()
    backend.proxy.post("/reset-stats")
    got = s3.get_object(Bucket="rc", Key="small")
    assert got["Body"].read() == b"s" * 10240
    assert got["ContentType"] == "text/csv" and got["Metadata"] == {"team": "ml"}
    st = backend.proxy.stats()
    assert st["forwarded"] == 1 and st["forwarded_by_method"] == {"GET": 1}, st["forwarded_by_method"]
    # An empty object and a missing one behave as S3 says.
    put_direct(backend, "cold/empty", b"")
    assert s3.get_object(Bucket="rc", Key="empty")["Body"].read() == b""
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="rc", Key="missing")
    assert err_status(e.value) == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="rc", Key="small", Range="bytes=20000-")
    assert err_status(e.value) == 416


def test_read_types_no_cache_and_promote(backend, make_server, tmp_path):
    backend.reset(latency_ms=0)
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    policies = ("[[policy]]\npath = \"/rc/nc/\"\nread_type = \"no-cache\"\n\n"
                "[[policy]]\npath = \"/rc/hot/\"\nread_type = \"promote\"\n\n")
    tiers = (f"[[tier]]\nmedium = \"mem\"\npath = \"{fast}\"\nquota = \"3MiB\"\n\n"
             f"[[tier]]\nmedium = \"ssd\"\npath = \"{slow}\"\nquota = \"64MiB\"\n")
    srv = make_server("rt", cache_toml="high_watermark = 0.9\nlow_watermark = 0.5\n\n" + tiers + "\n" + policies)
    s3 = srv.client()
    # no-cache: served, never kept
    put_direct(backend, "rt/nc/a", blob(MiB, 1))
    for _ in range(2):
        assert s3.get_object(Bucket="rc", Key="nc/a")["Body"].read() == blob(MiB, 1)
    assert backend_bytes(srv) == 2 * MiB
    assert stat(srv, "nc/a")["cached_bytes"] == 0
    # a run of pages not kept is read from the run itself, each page once
    # (12 pages: several runs, each bounded by the read-ahead window)
    put_direct(backend, "rt/nc/big", blob(12 * MiB, 2))
    assert s3.get_object(Bucket="rc", Key="nc/big")["Body"].read() == blob(12 * MiB, 2)
    assert backend_bytes(srv) == 14 * MiB
    assert s3.get_object(Bucket="rc", Key="nc/big", Range="bytes=1048576-3145727")["Body"].read() == \
        blob(12 * MiB, 2)[MiB:3 * MiB]
    assert backend_bytes(srv) == 16 * MiB
    assert stat(srv, "nc/big")["cached_bytes"] == 0
    # promote: data demoted to the slow tier comes back up when read
    for i in range(4):
        put_direct(backend, f"rt/hot/o{i}", blob(MiB, 10 + i))
    for i in range(4):
        assert s3.get_object(Bucket="rc", Key=f"hot/o{i}")["Body"].read() == blob(MiB, 10 + i)
        time.sleep(0.2)  # the evictor demotes past the high watermark
    deadline = time.time() + 5
    while time.time() < deadline and stat(srv, "hot/o0")["tiers"][0]["tier"] != 1:
        time.sleep(0.1)
    assert stat(srv, "hot/o0")["tiers"] == [{"tier": 1, "medium": "ssd", "bytes": MiB}]
    # Each read may promote it, once the evictor has made room in the mem tier
    # (it demotes down to the low watermark after the reads above).
    deadline = time.time() + 15
    while True:
        assert s3.get_object(Bucket="rc", Key="hot/o0")["Body"].read() == blob(MiB, 10)
        if stat(srv, "hot/o0")["tiers"][0]["tier"] == 0 or time.time() > deadline:
            break
        time.sleep(0.1)

    def tiers_seen():
        m = srv.metrics()
        return {"objects": {f"o{i}": stat(srv, f"hot/o{i}")["tiers"] for i in range(4)},
                "used": [metric(m, "reservoir_tier_used_bytes", tier=str(t)) for t in (0, 1)],
                "reserved": [metric(m, "reservoir_tier_reserved_bytes", tier=str(t)) for t in (0, 1)],
                "promotions": metric(m, "reservoir_cache_promotions_total")}
    assert stat(srv, "hot/o0")["tiers"][0]["tier"] == 0, f"promoted back to the mem tier: {tiers_seen()}"
    # The tiers' accounting matches the data in them (only these four objects
    # are kept), and nothing is left reserved, once moves under way are done.
    def consistent(seen):
        held = [sum(e["bytes"] for tiers in seen["objects"].values() for e in tiers if e["tier"] == t)
                for t in (0, 1)]
        return seen["used"] == held and seen["reserved"] == [0, 0]
    deadline = time.time() + 5
    seen = tiers_seen()
    while not consistent(seen) and time.time() < deadline:
        time.sleep(0.2)
        seen = tiers_seen()
    assert consistent(seen), seen
    assert metric(srv.metrics(), "reservoir_cache_promotions_total") >= 1
    assert (metric(srv.metrics(), "reservoir_cache_evictions_total", tier="0", reason="demote") or 0) >= 1
    # bytes intact after the moves, and nothing fetched again
    fetched = backend_bytes(srv)
    for i in range(4):
        assert s3.get_object(Bucket="rc", Key=f"hot/o{i}")["Body"].read() == blob(MiB, 10 + i)
    assert backend_bytes(srv) == fetched


def test_a_mem_tier_emptied_by_a_reboot_is_read_through_again(backend, make_server, tmp_path):
    """A mem tier is a tmpfs: a reboot empties it even after a clean stop. The start
    finds its pages missing (each is checked by size) and drops them, so the tier's
    accounting starts empty; reads fetch them again."""
    backend.reset(latency_ms=0)
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    tiers = (f"[[tier]]\nmedium = \"mem\"\npath = \"{fast}\"\nquota = \"64MiB\"\n\n"
             f"[[tier]]\nmedium = \"ssd\"\npath = \"{slow}\"\nquota = \"64MiB\"\n")
    srv = make_server("reboot", cache_toml=tiers)
    s3 = srv.client()
    sizes = {"reboot/a": 3 * MiB, "reboot/b": MiB + 5, "reboot/c": 100 * 1024}
    for i, (key, n) in enumerate(sizes.items()):
        put_direct(backend, key, blob(n, 40 + i))
        assert s3.get_object(Bucket="rc", Key=key[len("reboot/"):])["Body"].read() == blob(n, 40 + i)
        assert stat(srv, key[len("reboot/"):])["tiers"][0]["medium"] == "mem"
    srv.stop()
    shutil.rmtree(fast)  # the reboot
    srv.start()
    # only b's last page of 5 bytes is left: it is kept in the index, not in a file
    assert metric(srv.metrics(), "reservoir_tier_used_bytes", tier="0", medium="mem") == 5
    s3 = srv.client()
    for i, (key, n) in enumerate(sizes.items()):
        assert s3.get_object(Bucket="rc", Key=key[len("reboot/"):])["Body"].read() == blob(n, 40 + i), key
    # Each byte fetched again, once, but for b's last page of 5 bytes, which is kept in
    # the index (small data) rather than in a file on the mem tier.
    assert backend_bytes(srv) == sum(sizes.values()) - 5
    assert "pages and 0 cached objects dropped" in srv.log_path.read_text()


def test_small_objects_are_served_with_the_memory_map_off(tmp_path):
    """[cache] memory = 0: no small object is held in memory; reads come from
    the index and stay exact across overwrites and a restart."""
    ufs = tmp_path / "ufs"
    ufs.mkdir()
    srv = ReservoirServer(tmp_path / "srv", mounts=[{"path": "/", "ufs": f"file://{ufs}"}],
                          extra_toml="[cache]\nmemory = 0\n")
    srv.start()
    try:
        assert "memory=0" in srv.log_tail(200)
        s3 = srv.client()
        s3.create_bucket(Bucket="nomem")
        for i in range(3):
            body = os.urandom(10 * 1024)
            s3.put_object(Bucket="nomem", Key="k", Body=body)
            assert s3.get_object(Bucket="nomem", Key="k")["Body"].read() == body
        srv.stop()
        srv.start()
        s3 = srv.client()
        assert s3.get_object(Bucket="nomem", Key="k")["Body"].read() == body
    finally:
        srv.stop()


def test_tagging_an_object_read_through_by_page_keeps_its_bytes(backend, make_server):
    """New tags on an object the cache holds only some pages of: a new version
    of the same bytes goes back to the under store, whole."""
    backend.reset(latency_ms=0)
    data = os.urandom(3 * MiB + 5)
    put_direct(backend, "tagpages/obj", data)
    srv = make_server("tagpages")
    s3 = srv.client()
    got = s3.get_object(Bucket="rc", Key="obj", Range="bytes=1048576-1048600")["Body"].read()
    assert got == data[1048576:1048601]
    s3.put_object_tagging(Bucket="rc", Key="obj", Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    assert s3.get_object(Bucket="rc", Key="obj")["Body"].read() == data
    srv.sync("rc/", timeout=60)
    assert backend.direct.get_object(Bucket=BUCKET, Key="tagpages/obj")["Body"].read() == data
    tags = backend.direct.get_object_tagging(Bucket=BUCKET, Key="tagpages/obj")["TagSet"]
    assert tags == [{"Key": "t", "Value": "1"}]
    assert s3.get_object_tagging(Bucket="rc", Key="obj")["TagSet"] == [{"Key": "t", "Value": "1"}]


def test_pages_of_a_replaced_object_are_never_mixed(backend, make_server):
    """The cache holds some pages of an object, then another writer replaces it
    in the under store (same size). A read of a page not cached yet must not
    serve the new bytes under the old ETag: it fails (503), the stale version
    is dropped, and the next read serves the new object whole."""
    backend.reset(latency_ms=0)
    old = os.urandom(3 * MiB)
    put_direct(backend, "mixed/obj", old)
    srv = make_server("mixed")
    s3 = srv.client()
    first = s3.get_object(Bucket="rc", Key="obj", Range="bytes=0-99")
    assert first["Body"].read() == old[:100]
    new = os.urandom(3 * MiB)
    put_direct(backend, "mixed/obj", new)  # another writer, behind the cache
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="rc", Key="obj", Range=f"bytes={2 * MiB}-{2 * MiB + 99}")["Body"].read()
    assert err_status(e.value) == 503
    got = s3.get_object(Bucket="rc", Key="obj")
    assert got["Body"].read() == new
    assert got["ETag"].strip('"') == hashlib.md5(new).hexdigest()


def proxy_heads(backend) -> int:
    return int(backend.proxy.stats().get("forwarded_by_method", {}).get("HEAD", 0))


def metadata_records(srv) -> tuple[int, int]:
    m = srv.metrics()
    return (int(metric(m, "reservoir_cache_metadata_records")),
            int(metric(m, "reservoir_cache_metadata_records_forgotten_total")))


def wait_until(cond, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def wait_metadata_records_at_most(srv, limit: int, timeout: float = 10) -> tuple[int, int]:
    deadline = time.time() + timeout
    while True:
        got = metadata_records(srv)
        if got[0] <= limit or time.time() > deadline:
            return got
        time.sleep(0.05)


def test_metadata_only_records_are_bounded_least_recently_used_first(backend, make_server):
    """HEADs of many keys leave records without data; beyond cache.max_metadata_records
    the least recently used are forgotten (the next read asks the under store
    again), objects with cached data are not counted, and the bound holds across a
    restart and a kill -9."""
    backend.reset(latency_ms=0)
    srv = make_server("md", cache_toml="max_metadata_records = 5\n")
    names = [f"h{i:02d}" for i in range(30)]
    for i, k in enumerate(names):
        put_direct(backend, f"md/{k}", blob(100 + i, i), Metadata={"n": str(i)})
    big = blob(2 * MiB, 99)
    put_direct(backend, "md/big", big)
    put_direct(backend, "md/empty", b"")
    s3 = srv.client()
    assert s3.get_object(Bucket="rc", Key="big")["Body"].read() == big  # pages kept: has data
    wait_until(lambda: stat(srv, "big")["cached_bytes"] == len(big))  # pages are kept after the answer
    assert s3.get_object(Bucket="rc", Key="empty")["Body"].read() == b""  # no data: counted
    for i, k in enumerate(names):
        h = s3.head_object(Bucket="rc", Key=k)
        assert h["ContentLength"] == 100 + i and h["Metadata"] == {"n": str(i)}
    records, forgotten = wait_metadata_records_at_most(srv, 5)
    assert records == 5 and forgotten == 26, (records, forgotten)
    # The five most recently read are still recorded: no backend request for them.
    heads = proxy_heads(backend)
    for k in names[-5:]:
        assert s3.head_object(Bucket="rc", Key=k)["ContentLength"] == 100 + names.index(k)
    assert proxy_heads(backend) == heads
    # A forgotten one is read through again, whole and right.
    assert stat(srv, names[0])["state"] == "not cached"
    heads = proxy_heads(backend)
    assert s3.head_object(Bucket="rc", Key=names[1])["Metadata"] == {"n": "1"}
    assert proxy_heads(backend) == heads + 1
    assert s3.get_object(Bucket="rc", Key=names[0])["Body"].read() == blob(100, 0)
    # The object with cached pages stayed through all of it.
    assert stat(srv, "big")["cached_bytes"] == len(big)
    fetched = backend_bytes(srv)
    assert s3.get_object(Bucket="rc", Key="big")["Body"].read() == big
    assert backend_bytes(srv) == fetched

    # One more record: the count is back at the limit whether or not the
    # evictor forgot a record while the GET above was filling (its record is
    # metadata only until its page arrives).
    assert s3.head_object(Bucket="rc", Key="empty")["ContentLength"] == 0
    assert wait_metadata_records_at_most(srv, 5)[0] == 5
    # A restart rebuilds the count from the index.
    srv.restart()
    s3 = srv.client()
    assert wait_metadata_records_at_most(srv, 5)[0] == 5
    # kill -9 right after more HEADs: forgets not yet synced may come back,
    # and are forgotten again after the start.
    for k in names[5:20]:
        assert s3.head_object(Bucket="rc", Key=k)["ContentLength"] == 100 + names.index(k)
    srv.kill()
    srv.start()
    assert wait_metadata_records_at_most(srv, 5)[0] == 5
    s3 = srv.client()
    for i, k in enumerate(names):
        assert s3.get_object(Bucket="rc", Key=k)["Body"].read() == blob(100 + i, i)
    assert s3.get_object(Bucket="rc", Key="big")["Body"].read() == big
    # Each GET kept the object's page: none of them is metadata only now
    # (the empty object is, if it was not forgotten after the kill).
    expected = 0 if stat(srv, "empty")["state"] == "not cached" else 1
    wait_until(lambda: metadata_records(srv)[0] == expected)


def test_a_read_keeps_a_metadata_only_record(backend, make_server):
    """The order is by use, not by age: a HEAD or GET of a record (also of an empty
    object written through Reservoir, answered from memory) makes it the most
    recent, so the next one forgotten is another."""
    backend.reset(latency_ms=0)
    srv = make_server("mdr", cache_toml="max_metadata_records = 3\n")
    s3 = srv.client()
    s3.put_object(Bucket="rc", Key="mine-empty", Body=b"")  # written through: empty, no data
    srv.sync("rc/")
    for k in ("a", "b", "c"):
        put_direct(backend, f"mdr/{k}", k.encode() * 10)
    for k in ("a", "b"):
        assert s3.head_object(Bucket="rc", Key=k)["ContentLength"] == 10
    assert wait_metadata_records_at_most(srv, 3) == (3, 0)  # mine-empty, a, b
    # The first GET reads the index (and keeps the empty object in memory):
    # a, b, mine-empty.
    assert s3.get_object(Bucket="rc", Key="mine-empty")["Body"].read() == b""
    s3.head_object(Bucket="rc", Key="a")
    s3.head_object(Bucket="rc", Key="b")  # mine-empty, a, b
    # The second is answered from memory, and counts as a use too: a, b, mine-empty.
    assert s3.get_object(Bucket="rc", Key="mine-empty")["Body"].read() == b""
    s3.head_object(Bucket="rc", Key="a")  # b, mine-empty, a
    assert s3.head_object(Bucket="rc", Key="c")["ContentLength"] == 10  # b goes
    assert wait_metadata_records_at_most(srv, 3) == (3, 1)
    # Without the use counted by a HEAD, a would have gone; without the one
    # counted from memory, mine-empty.
    assert stat(srv, "b")["state"] == "not cached"
    for k in ("a", "c", "mine-empty"):
        assert stat(srv, k)["state"] != "not cached", k


def test_a_bad_max_metadata_records_stops_the_start(tmp_path):
    srv = ReservoirServer(tmp_path / "bad", extra_toml="[cache]\nmax_metadata_records = -3\n")
    with pytest.raises(Exception) as e:
        srv.start(timeout=10)
    srv.stop()
    assert "max_metadata_records" in str(e.value)
