"""Crash safety: kill -9 the server in the middle of 500 concurrent PUTs, restart it on
the same data dir, and check that every acknowledged object is there with its bytes,
and reaches the under store after the sync barrier. Objects whose PUT was not
acknowledged may be missing, but never torn."""

import hashlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from conftest import ServerError, metric, persist_state, unique_bucket_name

pytestmark = [pytest.mark.reservoir_only, pytest.mark.slow]

N_PUTS = 500
WORKERS = 32
KILL_AFTER_ACKS = 200


def _payload(i: int) -> bytes:
    rnd = random.Random(i * 7919 + 17)
    size = rnd.choice([1, rnd.randint(1, 4096), rnd.randint(1, 256 * 1024)])
    return rnd.randbytes(size)


@pytest.mark.parametrize("delay,ring", [("0s", None), ("1h", None), ("0s", "1MiB")],
                         ids=["persisting", "held-back", "small-index-journal"])
def test_kill9_during_concurrent_puts(reservoir_factory, delay, ring):
    """ring: a 1 MiB index journal, so that its halves change (each with a background
    flush of the index) many times during the PUTs and the kill."""
    srv = reservoir_factory(delay=delay, concurrency=4,
                            server_options={"index_journal_bytes": ring} if ring else None)
    admin = srv.client()
    bucket = unique_bucket_name("crash")
    admin.create_bucket(Bucket=bucket)
    client = srv.client(max_pool=WORKERS, read_timeout=30)

    payloads = {f"obj/{i:04d}": _payload(i) for i in range(N_PUTS)}
    acked: dict[str, str] = {}     # key -> md5 of acknowledged bytes
    failed: set[str] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def put(key: str):
        data = payloads[key]
        try:
            resp = client.put_object(Bucket=bucket, Key=key, Body=data)
            ok = resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        except (ClientError, BotoCoreError, OSError):
            ok = False
        with lock:
            if ok:
                acked[key] = hashlib.md5(data).hexdigest()
                if len(acked) >= KILL_AFTER_ACKS and not killed.is_set():
                    killed.set()
                    srv.kill()  # SIGKILL while other PUTs are in flight
            else:
                failed.add(key)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(put, sorted(payloads)))

    assert killed.is_set(), "the server was never killed"
    assert len(acked) >= KILL_AFTER_ACKS
    assert failed, "every PUT succeeded: the kill did not happen mid-way"
    assert not srv.alive()

    srv.start()  # same data dir and under store
    c = srv.client()

    # every acknowledged object is readable with identical bytes
    bad = []
    for key, md5 in sorted(acked.items()):
        try:
            got = c.get_object(Bucket=bucket, Key=key)
            body = got["Body"].read()
        except ClientError as e:
            bad.append((key, e.response["Error"]["Code"]))
            continue
        if hashlib.md5(body).hexdigest() != md5:
            bad.append((key, f"bytes differ ({len(body)} vs {len(payloads[key])})"))
        elif persist_state(got) not in {"dirty", "persisting", "persisted"}:
            bad.append((key, f"state {persist_state(got)}"))
    assert not bad, f"{len(bad)} acknowledged objects lost or corrupted after kill -9: {bad[:10]}"

    # the listing has every acknowledged key; unacknowledged ones are all-or-nothing
    listed = set()
    token = None
    while True:
        kw = {"Bucket": bucket}
        if token:
            kw["ContinuationToken"] = token
        page = c.list_objects_v2(**kw)
        listed |= {o["Key"] for o in page.get("Contents", [])}
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert set(acked) <= listed, f"missing from LIST: {sorted(set(acked) - listed)[:10]}"
    assert listed <= set(payloads)
    for key in sorted(listed - set(acked)):
        body = c.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == payloads[key], f"unacknowledged {key} is torn ({len(body)} bytes)"

    # after the barrier, the under store holds exactly those bytes
    if delay != "0s":
        srv.restart(delay="0s")
        c = srv.client()
    srv.sync(bucket + "/", timeout=120)
    missing, differ = [], []
    for key in sorted(listed):
        p = srv.ufs_path(bucket, key)
        if not p.is_file():
            missing.append(key)
        elif p.read_bytes() != payloads[key]:
            differ.append(key)
    assert not missing, f"{len(missing)} objects not in the under store after sync: {missing[:10]}"
    assert not differ, f"{len(differ)} objects differ in the under store: {differ[:10]}"
    ufs_keys = {p.relative_to(srv.ufs_path(bucket)).as_posix()
                for p in srv.ufs_path(bucket).rglob("*") if p.is_file()}
    assert ufs_keys == listed


def test_kill9_replays_the_index_journal_across_many_laps(reservoir_factory):
    """Synced index writes are durable through the index journal, a ring overwritten in
    place; RocksDB keeps no log of its own and holds only what it flushed. With a 1 MiB
    ring, 400 small PUTs, overwrites and deletes go around it many times (a background
    flush each half). After kill -9, the restart applies the ring's records again:
    every acknowledged PUT and DELETE is there, with the bytes of the last PUT."""
    srv = reservoir_factory(delay="1h", server_options={"index_journal_bytes": "1MiB"})
    bucket = unique_bucket_name("ring")
    c = srv.client(max_pool=8)
    c.create_bucket(Bucket=bucket)
    expect: dict[str, bytes | None] = {}
    rnd = random.Random(11)

    bodies = [rnd.randbytes(rnd.randint(1, 20 * 1024)) if i % 7 else b"" for i in range(400)]

    def put(i: int):
        key = f"k/{i % 300:03d}"
        c.put_object(Bucket=bucket, Key=key, Body=bodies[i])
        return key, bodies[i]

    with ThreadPoolExecutor(max_workers=8) as pool:
        for first, end in ((0, 300), (300, 400)):  # then overwrites of the first 100
            for key, data in pool.map(put, range(first, end)):
                expect[key] = data
    for i in range(0, 300, 9):  # deletes, synced like PUTs
        key = f"k/{i:03d}"
        c.delete_object(Bucket=bucket, Key=key)
        expect[key] = None
    srv.kill()
    assert not srv.alive()

    srv.start()
    assert "applied again to the index" in srv.log_path.read_text()
    c = srv.client()
    bad = []
    for key, data in sorted(expect.items()):
        try:
            body = c.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            if data is not None or e.response["Error"]["Code"] != "NoSuchKey":
                bad.append((key, e.response["Error"]["Code"]))
            continue
        if body != data:
            bad.append((key, "deleted but present" if data is None else f"{len(body)} vs {len(data)} bytes"))
    assert not bad, f"{len(bad)} keys wrong after kill -9: {bad[:10]}"
    listed = {o["Key"] for o in c.list_objects_v2(Bucket=bucket, MaxKeys=1000).get("Contents", [])}
    assert listed == {k for k, v in expect.items() if v is not None}
    # The data of the small objects of 4 KiB and more was in the index's blob
    # files (written at its flushes, one each half ring) and is read back above.
    m = srv.metrics()
    assert metric(m, "reservoir_index_blob_bytes") > 0
    assert metric(m, "reservoir_index_blob_garbage_bytes") >= 0
    assert metric(m, "reservoir_index_blob_collections_total") == 0  # under 64 MiB of garbage

    # A clean stop and start apply nothing twice; the drain then delivers the same bytes.
    srv.restart(delay="0s")
    srv.sync(bucket + "/", timeout=120)
    for key, data in sorted(expect.items()):
        p = srv.ufs_path(bucket, key)
        assert (p.read_bytes() if p.is_file() else None) == data, key


def test_index_journal_size_is_checked(reservoir_factory):
    srv = reservoir_factory(start=False, server_options={"index_journal_bytes": "64KiB"})
    with pytest.raises(ServerError):
        srv.start(timeout=10)
    assert "index_journal_bytes must be 1MiB to 4GiB" in srv.log_path.read_text()


def test_ring_left_by_a_crash_is_applied_with_durability_none(reservoir_factory):
    """A server with durability "fsync" is killed; started again with durability "none",
    it still applies the index journal the first run left (RocksDB kept no log of those
    writes), and every acknowledged PUT is there."""
    srv = reservoir_factory(delay="1h")
    bucket = unique_bucket_name("none")
    c = srv.client()
    c.create_bucket(Bucket=bucket)
    bodies = {f"k/{i:03d}": random.Random(i).randbytes(i * 37 % 5000) for i in range(120)}
    for key, data in bodies.items():
        c.put_object(Bucket=bucket, Key=key, Body=data)
    srv.kill()
    srv.server_options["durability"] = "none"
    srv.start()
    assert "applied again to the index" in srv.log_path.read_text()
    c = srv.client()
    for key, data in bodies.items():
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key
