"""Write-back to an s3:// under store: Reservoir in front of moto_server, reached through
tests/tools/slow_s3_proxy.py (latency, PUT rate limits with 503 SlowDown, outages).

Each test starts its own Reservoir with one or two bucket mounts such as

    [[mount]] path = "/wb"  ufs = "s3://wbbucket/burst"  endpoint = "http://127.0.0.1:<proxy>"
              access_key = "moto" secret_key = "moto"  persist = { concurrency = 16, max_ops_per_sec = 50 }

writes through Reservoir's S3 API, waits on the admin sync barrier, and then checks what
moto holds, directly (not through the proxy): the exact key set, the bytes and the user
metadata. Many fast requests go through bench/s3load.py's raw asyncio client, since boto3
with dozens of threads is CPU-bound on 2 cores.

    bash tests/e2e/run.sh tests/e2e/test_writeback_s3.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import re
import threading
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from conftest import (ACCESS_KEY, BACKEND_KEY, REPO_ROOT, SECRET_KEY, ReservoirServer,
                      delete_bucket_quietly, err_code, err_status, headers_of, md5_hex, metric,
                      persist_state)

pytestmark = pytest.mark.reservoir_only

BUCKET = "wbbucket"  # the moto bucket behind every mount of this module
KiB = 1024


def _load_s3load():
    spec = importlib.util.spec_from_file_location("s3load", REPO_ROOT / "bench" / "s3load.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


s3load = _load_s3load()


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def run_jobs(endpoint: str, jobs: list, concurrency: int, *, access_key: str = ACCESS_KEY,
             secret_key: str = SECRET_KEY) -> list:
    """Run async jobs on `concurrency` keep-alive connections (bench/s3load.py's Conn and
    SigV4 Signer). A job is `async def job(req)`, with
    `await req(method, path, body=b"", headers=None) -> (status, headers, body)`, and each
    job runs on one connection from start to end (so a GET after a PUT in the same job
    really follows it). Returns the jobs' results in order; a job that raised gives its
    exception. No retries: every error is seen."""
    u = urllib.parse.urlsplit(endpoint)
    signer = s3load.Signer(access_key, secret_key)
    results: list = [None] * len(jobs)

    async def main():
        todo = iter(range(len(jobs)))

        async def worker():
            conn = s3load.Conn(u.hostname, u.port)

            async def req(method, path, body=b"", headers=None):
                return await conn.request(method, path, signer.headers(method, u.netloc, path, headers),
                                          body)
            for i in todo:
                try:
                    results[i] = await jobs[i](req)
                except Exception as e:  # noqa: BLE001 - reported by the caller
                    results[i] = e
            conn.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(main())
    return results


def xml_code(body: bytes) -> str:
    return body.split(b"<Code>")[1].split(b"</Code>")[0].decode() if b"<Code>" in body else ""


def backend_objects(backend, prefix: str, keys, concurrency: int = 8) -> dict:
    """GET each of `keys` straight from moto (`prefix` + key): {key: (status, headers, body)}."""
    keys = list(keys)

    def job(key):
        async def run(req):
            return await req("GET", f"/{BUCKET}/{prefix}{key}")
        return run
    got = run_jobs(backend.moto.endpoint, [job(k) for k in keys], concurrency,
                   access_key=BACKEND_KEY, secret_key=BACKEND_KEY)
    return dict(zip(keys, got))


def assert_backend_holds(backend, prefix: str, expected: dict, meta_name: str) -> None:
    """moto holds exactly `expected` under `prefix`: {key: (bytes, meta value)}; every
    object with identical bytes and x-amz-meta-<meta_name>, and no other key."""
    listed = backend.objects(BUCKET, prefix)
    have = {k[len(prefix):] for k in listed}
    missing, extra = sorted(set(expected) - have), sorted(have - set(expected))
    assert not missing and not extra, (
        f"moto's keys under {prefix!r} differ from the acknowledged set: {len(missing)} missing "
        f"{missing[:5]}, {len(extra)} extra {extra[:5]} ({len(have)} present, {len(expected)} expected)")
    wrong_etag = [k for k, (data, _) in expected.items() if listed[prefix + k]["ETag"] != md5_hex(data)]
    assert not wrong_etag, f"{len(wrong_etag)} objects with another ETag in moto, e.g. {wrong_etag[:5]}"
    got = backend_objects(backend, prefix, expected)
    bad = []
    for k, (data, meta) in expected.items():
        r = got[k]
        if isinstance(r, Exception):
            bad.append((k, repr(r)))
        elif r[0] != 200 or r[2] != data:
            bad.append((k, f"HTTP {r[0]}, {len(r[2])} bytes, expected {len(data)} bytes"))
        elif r[1].get(f"x-amz-meta-{meta_name}") != str(meta):
            bad.append((k, f"x-amz-meta-{meta_name} = {r[1].get(f'x-amz-meta-{meta_name}')!r}, "
                           f"expected {meta!r}"))
    assert not bad, f"{len(bad)} objects wrong in moto, e.g. {bad[:5]}"


def listed_sizes(s3, bucket: str) -> dict:
    """{key: size} of Reservoir's ListObjectsV2 for the bucket, all pages; a key listed twice
    fails the test."""
    out, token = {}, None
    while True:
        kw = {"Bucket": bucket, "MaxKeys": 400}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        for o in page.get("Contents", []):
            assert o["Key"] not in out, f"{o['Key']} listed twice"
            out[o["Key"]] = o["Size"]
        if not page.get("IsTruncated"):
            return out
        token = page["NextContinuationToken"]


def wait_for(cond, timeout: float, what: str, interval: float = 0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def summary(label: str, **values) -> None:
    """One line with the numbers worth reading in the report (pytest -rA or a failure)."""
    print(f"[{label}] " + json.dumps(values, sort_keys=True, default=str))


@pytest.fixture(scope="module")
def backend(slow_s3_backend):
    slow_s3_backend.create_bucket(BUCKET)
    return slow_s3_backend


@pytest.fixture
def make_server(tmp_path, backend):
    """Start a Reservoir whose mounts are s3:// through the proxy; stopped at the test's end
    (so that no earlier server still talks to the proxy while a test reads its counters)."""
    started: list[ReservoirServer] = []

    def make(*mounts: dict, **kw) -> ReservoirServer:
        srv = ReservoirServer(tmp_path / f"rsv{len(started)}", mounts=list(mounts), **kw)
        started.append(srv)
        return srv.start()

    yield make
    dead = [s for s in started if s.proc is not None and s.proc.poll() is not None
            and s.proc.returncode not in (0, -9)]
    for srv in started:
        srv.stop()
    assert not dead, f"reservoir exited with {dead[0].proc.returncode}; log:\n{dead[0].log_tail()}"


def put_get_job(key: str, data: bytes, meta_name: str, meta_value, check_get: bool = True):
    """PUT key (with x-amz-meta-<meta_name>) and, on the same connection, GET it back.
    Returns a string describing the failure, or None."""
    async def run(req):
        st, h, body = await req("PUT", f"/{key}", data, {f"x-amz-meta-{meta_name}": str(meta_value)})
        if st != 200:
            return f"PUT {key}: HTTP {st} {xml_code(body) or body[:100]!r}"
        if h.get("etag", "").strip('"') != md5_hex(data):
            return f"PUT {key}: ETag {h.get('etag')}"
        if not check_get:
            return None
        st, h, body = await req("GET", f"/{key}")
        if st != 200 or body != data:
            return f"GET {key} after PUT: HTTP {st}, {len(body)} bytes (expected {len(data)})"
        if h.get(f"x-amz-meta-{meta_name}") != str(meta_value):
            return f"GET {key} after PUT: x-amz-meta-{meta_name} = {h.get(f'x-amz-meta-{meta_name}')!r}"
        return None
    return run


# --------------------------------------------------------------------------
# 1 + 7. Burst through a 50 PUT/s backend, then the metrics
# --------------------------------------------------------------------------

BURST_N = 2000
BURST_LIMIT = 50


@pytest.fixture(scope="module")
def burst(backend, tmp_path_factory):
    """2,000 PUTs of 10 KiB at concurrency 64 through Reservoir, whose backend takes at most
    50 PUT/s (proxy: 503 SlowDown above it, 30 ms median latency), then the sync barrier.
    The assertions are in test_burst_* and test_metrics_after_burst."""
    backend.reset(max_put_rps=BURST_LIMIT, latency_ms=30)
    srv = ReservoirServer(tmp_path_factory.mktemp("burst"), mounts=[backend.mount(
        "/wb", f"s3://{BUCKET}/burst", concurrency=16,
        persist={"max_ops_per_sec": BURST_LIMIT})]).start()
    try:
        objects = {f"k{i:05d}": (random.Random(i).randbytes(10 * KiB), i) for i in range(BURST_N)}
        jobs = [put_get_job(f"wb/{k}", data, "i", i) for k, (data, i) in objects.items()]
        t0 = time.monotonic()
        results = run_jobs(srv.endpoint, jobs, 64)
        client_s = time.monotonic() - t0
        after_clients = srv.metrics()
        t1 = time.monotonic()
        sync_doc = srv.sync("wb/", timeout=150)
        drain_s = time.monotonic() - t1
        res = dict(srv=srv, objects=objects, client_s=client_s, drain_s=drain_s,
                   errors=[r if isinstance(r, str) else repr(r) for r in results if r is not None],
                   dirty_after_clients=metric(after_clients, "reservoir_dirty_objects"),
                   sync=sync_doc, proxy=backend.proxy.stats(), metrics=srv.metrics(),
                   status=srv.mount_status("/wb", "wb/"))
        summary("burst", client_seconds=round(client_s, 2), drain_seconds=round(drain_s, 2),
                client_errors=len(res["errors"]), dirty_after_clients=res["dirty_after_clients"],
                peak_put_rps=res["proxy"]["peak_put_rps"], slowdown_503=res["proxy"]["slowdown_503"],
                reservoir_throttled=res["status"]["throttled"], retries=res["status"]["retries"],
                persisted=res["status"]["persisted"], concurrency_now=res["status"]["concurrency"])
        yield res
    finally:
        srv.stop()


def test_burst_clients_see_no_errors_and_read_their_writes(burst):
    errors = burst["errors"]
    assert not errors, f"{len(errors)} of {BURST_N} client requests failed, e.g. {errors[:5]}"
    # write-back absorbed the burst: the clients did not wait for the 50 PUT/s backend
    assert burst["client_s"] < BURST_N / BURST_LIMIT * 0.75, burst["client_s"]
    assert burst["dirty_after_clients"] >= BURST_N / 4, (
        f"only {burst['dirty_after_clients']} objects dirty right after the burst")


def test_burst_backend_never_above_its_limit(burst):
    st = burst["proxy"]
    # the proxy counts what it forwarded to moto in every sliding one-second window
    assert st["peak_put_rps"] <= BURST_LIMIT + 1, st["peak_put_rps"]
    assert max(st["per_second_puts"]) <= BURST_LIMIT + 1, st["per_second_puts"]
    assert st["forwarded_by_method"].get("PUT", 0) >= BURST_N
    assert st["backend_by_status"].get("200", 0) >= BURST_N
    # Reservoir's throttled counter is exactly the SlowDowns the proxy sent it, and each
    # of those was retried
    assert burst["status"]["throttled"] == st["slowdown_503"], (burst["status"], st["slowdown_503"])
    assert burst["status"]["retries"] >= st["slowdown_503"]
    # paced at 50/s, 2,000 uploads take at least 40 s (minus the first burst of tokens)
    assert burst["client_s"] + burst["drain_s"] >= BURST_N / BURST_LIMIT - 5


def test_burst_everything_in_backend(burst, backend):
    assert burst["sync"] == {"done": True, "pending": 0, "parked": []}
    assert_backend_holds(backend, "burst/", burst["objects"], "i")


def test_metrics_after_burst(burst):
    m = burst["metrics"]
    labels = {"mount": "/wb"}
    for name in ("reservoir_dirty_objects", "reservoir_persist_concurrency",
                 "reservoir_backend_throttled_total", "reservoir_backend_request_seconds_bucket"):
        assert metric(m, name) is not None, f"/metrics lacks {name}"
    assert metric(m, "reservoir_dirty_objects") == 0  # after the barrier
    assert metric(m, "reservoir_dirty_bytes") == 0
    ok = metric(m, "reservoir_persist_ops_total", result="ok", **labels)
    assert ok >= BURST_N, ok
    assert ok == burst["status"]["persisted"]
    throttled = metric(m, "reservoir_backend_throttled_total", **labels)
    assert throttled == burst["status"]["throttled"] == burst["proxy"]["slowdown_503"]
    conc = metric(m, "reservoir_persist_concurrency", **labels)
    assert 1 <= conc <= 16, conc
    # the latency histogram: cumulative, +Inf == count, every upload counted, and it saw
    # the proxy's 30 ms median latency
    buckets = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in m.items()
                      if n == "reservoir_backend_request_seconds_bucket" and ("mount", "/wb") in ls),
                     key=lambda b: b[0])
    assert len(buckets) >= 5 and buckets[-1][0] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), buckets
    count = metric(m, "reservoir_backend_request_seconds_count", **labels)
    assert counts[-1] == count >= ok, (counts[-1], count, ok)
    below_10ms = dict(buckets).get(0.01)
    assert below_10ms is not None and below_10ms <= 0.1 * count, buckets
    assert metric(m, "reservoir_backend_request_seconds_sum", **labels) >= 0.02 * count


# --------------------------------------------------------------------------
# 2. Backend outage during a write stream
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mode,outage_s,n", [("refuse", 20, 300), ("error500", 10, 150)])
def test_outage_during_write_stream(backend, make_server, mode, outage_s, n):
    """PUTs every 80 ms while the backend is out for `outage_s` seconds in the middle (refuse:
    every connection closed at once; error500: 500 InternalError to every request): no client
    error, reads are served from the cache meanwhile, nothing written during the outage is
    persisted during it, and everything arrives afterwards."""
    backend.reset(latency_ms=30)
    bucket, prefix = f"wo-{mode}", f"outage-{mode}/"
    srv = make_server(backend.mount(f"/{bucket}", f"s3://{BUCKET}/{prefix}", concurrency=16,
                                    persist={"max_ops_per_sec": 100}))
    s3 = srv.client()
    start_at, gap = 25, 0.08
    expected, errors, during = {}, [], []
    mid = None
    outage_t0 = outage_t1 = None
    t0 = time.monotonic()
    for i in range(n):
        if i == start_at:
            backend.proxy.outage(mode, outage_s)
            outage_t0 = time.monotonic()
            outage_t1 = outage_t0 + outage_s
        key = f"o{i:04d}"
        data = random.Random(10_000 + i).randbytes(random.Random(i).randint(1, 20 * KiB))
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"i": str(i)})
            expected[key] = (data, i)
            got = s3.get_object(Bucket=bucket, Key=key)
            if got["Body"].read() != data:
                errors.append(f"GET {key}: other bytes")
            now = time.monotonic()
            if outage_t0 and outage_t0 + 1 < now < outage_t1 - 1:
                during.append((key, persist_state(got)))
        except ClientError as e:
            errors.append(f"{key}: {err_code(e)} {err_status(e)}")
        if i == start_at + int(outage_s / gap / 2):  # half way through the outage
            mid = (srv.cli("persist-status", f"{bucket}/"), srv.persist_status(f"{bucket}/"),
                   backend.proxy.stats())
        time.sleep(max(0.0, t0 + (i + 1) * gap - time.monotonic()))
    stream_s = time.monotonic() - t0
    assert not errors, f"{len(errors)} client errors during the outage, e.g. {errors[:5]}"
    assert len(expected) == n
    # during the outage, nothing written then was persisted, yet all of it was readable
    assert len(during) >= (outage_s - 2) / gap / 2, len(during)
    unpersisted = ("dirty", "persisting")
    assert all(st in unpersisted for _, st in during), [d for d in during if d[1] not in unpersisted][:5]
    cp, status, pstats = mid
    assert status["dirty_objects"] >= 40, status
    assert status["mounts"][0]["retries"] > 0, status
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    m = re.search(r"mount /\S+: queued \d+, in flight \d+, persisted \d+, retries (\d+)", cp.stdout)
    assert m and int(m.group(1)) > 0, cp.stdout
    assert pstats["outage"]["mode"] == mode and pstats["outage_events"].get(mode, 0) > 0, pstats
    # the outage ends by itself; then the barrier
    wait_for(lambda: backend.proxy.ctl("GET", "/outage")[1]["mode"] == "off", outage_s + 10, "outage end")
    t1 = time.monotonic()
    doc = srv.sync(f"{bucket}/", timeout=120)
    drain_s = time.monotonic() - t1
    after = srv.mount_status(f"/{bucket}", f"{bucket}/")
    summary(f"outage-{mode}", stream_seconds=round(stream_s, 1), drain_after_outage_s=round(drain_s, 1),
            retries=after["retries"], persisted=after["persisted"],
            outage_events=backend.proxy.stats()["outage_events"])
    assert doc["parked"] == []
    assert after["retries"] > 0 and after["parked"] == 0
    assert_backend_holds(backend, prefix, expected, "i")
    # and Reservoir now says so
    assert persist_state(s3.head_object(Bucket=bucket, Key=f"o{start_at + 10:04d}")) == "persisted"


# --------------------------------------------------------------------------
# 3. kill -9 with 1,000 dirty objects and uploads in flight
# --------------------------------------------------------------------------

def test_crash_with_uploads_in_flight(backend, make_server):
    """1,000 objects written (every 10th above inline_max_bytes), 150 of them overwritten
    and 30 deleted, the backend taking 20 PUT/s; kill -9 while ~all are dirty and uploads
    are in flight; restart on the same data dir: reads, listings and finally moto hold
    exactly the last acknowledged state (no extra keys, no older version)."""
    backend.reset(max_put_rps=20, latency_ms=30)
    mount = backend.mount("/wc", f"s3://{BUCKET}/crash", concurrency=16,
                          persist={"max_ops_per_sec": 20})
    srv = make_server(mount)
    n = 1000
    # every 10th object above inline_max_bytes (64 KiB): a data file of its own
    v1 = {f"c{i:04d}": random.Random(20_000 + i).randbytes(100 * KiB if i % 10 == 3 else 6 * KiB)
          for i in range(n)}
    res = run_jobs(srv.endpoint, [put_get_job(f"wc/{k}", d, "v", 1, check_get=False)
                                  for k, d in v1.items()], 32)
    assert not [r for r in res if r is not None], [r for r in res if r is not None][:5]
    model = {k: (d, 1) for k, d in v1.items()}
    # a second version for 150 keys: the first 50 written (likely persisted or uploading
    # already) and 100 others
    rnd = random.Random(3)
    second = [f"c{i:04d}" for i in range(50)] + rnd.sample([f"c{i:04d}" for i in range(50, n)], 100)
    v2 = {k: random.Random(k).randbytes(rnd.choice([rnd.randint(100, 9 * KiB), 80 * KiB]))
          for k in second}
    res = run_jobs(srv.endpoint, [put_get_job(f"wc/{k}", d, "v", 2, check_get=False)
                                  for k, d in v2.items()], 32)
    assert not [r for r in res if r is not None], [r for r in res if r is not None][:5]
    model.update({k: (d, 2) for k, d in v2.items()})
    # and deletes: 10 of the first keys (their v1 may be in moto already) and 20 others
    deleted = [f"c{i:04d}" for i in range(10)] + rnd.sample(sorted(set(model) - set(second)), 20)

    def delete_job(key):
        async def run(req):
            st, _, body = await req("DELETE", f"/wc/{key}")
            return None if st == 204 else f"DELETE {key}: HTTP {st} {body[:100]!r}"
        return run
    res = run_jobs(srv.endpoint, [delete_job(k) for k in deleted], 8)
    assert not [r for r in res if r is not None], [r for r in res if r is not None][:5]
    for k in deleted:
        del model[k]

    def busy():
        m = srv.metrics()
        inflight = metric(m, "reservoir_persist_in_flight", mount="/wc")
        return m if inflight and inflight > 0 else None
    m = wait_for(busy, 5, "an upload in flight", interval=0.02)
    dirty_at_kill = metric(m, "reservoir_dirty_objects")
    in_flight = metric(m, "reservoir_persist_in_flight", mount="/wc")
    srv.kill()
    assert srv.proc.returncode == -9
    in_backend_at_kill = len(backend.objects(BUCKET, "crash/"))
    summary("crash", dirty_at_kill=dirty_at_kill, in_flight_at_kill=in_flight,
            in_backend_at_kill=in_backend_at_kill)
    assert dirty_at_kill >= 600, dirty_at_kill  # most of the 1,000

    # restart on the same data dir, with the backend's limits lifted so the rest drains fast
    backend.reset(latency_ms=30)
    mount["persist"] = {"max_ops_per_sec": 0}
    srv.start()
    assert "from before the restart" in srv.log_tail(200)

    # reads serve the last acknowledged version, deleted keys stay deleted
    def get_job(key):
        async def run(req):
            return await req("GET", f"/wc/{key}")
        return run
    every = list(model) + deleted
    got = dict(zip(every, run_jobs(srv.endpoint, [get_job(k) for k in every], 16)))
    wrong = [k for k, r in got.items() if isinstance(r, Exception) or
             (k in model and (r[0] != 200 or r[2] != model[k][0] or r[1].get("x-amz-meta-v") != str(model[k][1])))
             or (k not in model and r[0] != 404)]
    assert not wrong, f"{len(wrong)} keys read back wrong after the restart, e.g. {wrong[:5]}"
    # a listing merges the cache's records and the backend's, part persisted, part not
    assert listed_sizes(srv.client(), "wc") == {k: len(d) for k, (d, _) in model.items()}
    doc = srv.sync("wc/", timeout=120)
    assert doc["parked"] == []
    assert_backend_holds(backend, "crash/", model, "v")
    # the dirty accounting rebuilt at start-up ends at zero, not drifted
    m = srv.metrics()
    assert (metric(m, "reservoir_dirty_objects"), metric(m, "reservoir_dirty_bytes")) == (0, 0)


# --------------------------------------------------------------------------
# 4. Overwrites and deletes of the same keys while the backend is slow
# --------------------------------------------------------------------------

def test_ordering_overwrite_delete(backend, make_server):
    """4 clients, each owning 5 of 20 keys, run random sequences of put vN / delete with the
    backend at 100 ms median latency (uploads overlap the next writes of the same key); after
    the barrier moto holds exactly the last acknowledged state of every key."""
    backend.reset(latency_ms=100, latency_sigma=0.5)
    srv = make_server(backend.mount("/wd", f"s3://{BUCKET}/order", concurrency=8))
    keys = [f"key{i:02d}" for i in range(20)]
    model: dict[str, tuple[bytes, int] | None] = {}
    version = {k: 0 for k in keys}
    errors: list[str] = []
    lock = threading.Lock()
    seed = random.randrange(1 << 30)

    def client_run(owned, rnd, ops):
        s3 = srv.client()
        for _ in range(ops):
            k = rnd.choice(owned)
            try:
                if rnd.random() < 0.3:
                    s3.delete_object(Bucket="wd", Key=k)
                    with lock:
                        model[k] = None
                    try:
                        s3.head_object(Bucket="wd", Key=k)
                        errors.append(f"{k} still there after its delete")
                    except ClientError as e:
                        if err_status(e) != 404:
                            raise
                else:
                    version[k] += 1
                    # mostly small (kept in the index), now and then above inline_max_bytes
                    data = f"{k} v{version[k]} ".encode() * (rnd.randint(1, 300) if rnd.random() < 0.85
                                                              else 8000)
                    s3.put_object(Bucket="wd", Key=k, Body=data, Metadata={"v": str(version[k])})
                    with lock:
                        model[k] = (data, version[k])
                    if s3.get_object(Bucket="wd", Key=k)["Body"].read() != data:
                        errors.append(f"{k} v{version[k]}: read another version back")
            except ClientError as e:
                errors.append(f"{k}: {err_code(e)} {err_status(e)}")
            time.sleep(rnd.random() * 0.03)

    def round_(n, ops):
        threads = [threading.Thread(target=client_run, args=(keys[c::4], random.Random(seed + 7 * n + c), ops))
                   for c in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:5]
        live_sizes = {k: len(v[0]) for k, v in model.items() if v is not None}
        # before the barrier: tombstones hide what the backend still has, dirty records show
        assert listed_sizes(srv.client(), "wd") == live_sizes
        doc = srv.sync("wd/", timeout=60)
        assert doc["parked"] == []
        live = {k: v for k, v in model.items() if v is not None}
        assert_backend_holds(backend, "order/", live, "v")
        for k, v in model.items():  # Reservoir agrees
            if v is not None:
                assert persist_state(srv.client().head_object(Bucket="wd", Key=k)) == "persisted", k
        assert listed_sizes(srv.client(), "wd") == live_sizes

    round_(1, 60)
    st1 = backend.proxy.stats()
    round_(2, 40)
    st = backend.proxy.stats()
    summary("ordering", seed=seed, versions=sum(version.values()), deleted=[k for k, v in model.items() if v is None],
            forwarded=st["forwarded_by_method"], round1_forwarded=st1["forwarded_by_method"])
    # deletes reached the backend, and writes were coalesced or ordered, never reordered
    assert st["forwarded_by_method"].get("DELETE", 0) > 0
    assert any(v is None for v in model.values()) and any(v is not None for v in model.values())


# --------------------------------------------------------------------------
# 5. Dirty budget: on_full = "through" and "reject"
# --------------------------------------------------------------------------

def test_budget_full_through(backend, make_server):
    """dirty_max_objects = 20, uploads held back (delay 1h) and the backend slow (2 s): writes
    beyond the budget go synchronously to the backend and succeed; with the backend down they
    fail fast with 503 ServiceUnavailable, and are not kept."""
    backend.reset(latency_ms=2000, latency_sigma=0, latency_max_ms=3000)
    srv = make_server(backend.mount("/bt", f"s3://{BUCKET}/through", concurrency=4, delay="1h",
                                    on_full="through", dirty_max_objects=20))
    s3 = srv.client()
    expected = {}
    for i in range(20):
        data = random.Random(30_000 + i).randbytes(3 * KiB)
        t = time.monotonic()
        s3.put_object(Bucket="bt", Key=f"t{i:02d}", Body=data, Metadata={"i": str(i)})
        assert time.monotonic() - t < 1.9  # from the cache, not waiting for the 2 s backend
        expected[f"t{i:02d}"] = (data, i)
        assert persist_state(s3.head_object(Bucket="bt", Key=f"t{i:02d}")) == "dirty"
    assert srv.persist_status("bt/")["dirty_objects"] == 20
    assert backend.objects(BUCKET, "through/") == {}

    for i in range(20, 23):
        key, data = f"t{i:02d}", random.Random(30_000 + i).randbytes(3 * KiB)
        t = time.monotonic()
        s3.put_object(Bucket="bt", Key=key, Body=data, Metadata={"i": str(i)})
        took = time.monotonic() - t
        expected[key] = (data, i)
        assert 1.9 <= took < 10, f"a write beyond the budget took {took:.2f}s (backend latency 2 s)"
        assert persist_state(s3.head_object(Bucket="bt", Key=key)) == "persisted"
        # it is in the backend before any barrier
        assert backend.direct.get_object(Bucket=BUCKET, Key=f"through/{key}")["Body"].read() == data
    assert srv.persist_status("bt/")["dirty_objects"] == 20
    # a key that is dirty already is not written through (its older version would land
    # after this one): it joins the queue behind, even with the budget full
    data = b"t00, second version"
    t = time.monotonic()
    s3.put_object(Bucket="bt", Key="t00", Body=data, Metadata={"i": "second"})
    assert time.monotonic() - t < 1.9
    expected["t00"] = (data, "second")
    assert persist_state(s3.head_object(Bucket="bt", Key="t00")) == "dirty"
    assert srv.persist_status("bt/")["dirty_objects"] == 20

    backend.proxy.outage("refuse")
    failures, times = [], []
    for i in range(23, 26):
        key = f"t{i:02d}"
        t = time.monotonic()
        try:
            s3.put_object(Bucket="bt", Key=key, Body=b"never acknowledged", Metadata={"i": str(i)})
            failures.append(f"{key}: acknowledged while the backend was down")
        except ClientError as e:
            took = time.monotonic() - t
            times.append(round(took, 2))
            failures.append(None if (err_status(e), err_code(e)) == (503, "ServiceUnavailable") and took < 15
                            else f"{key}: {err_status(e)} {err_code(e)} after {took:.1f}s")
    summary("budget-through", failures=failures, seconds_to_fail=times)
    assert failures == [None] * 3, failures
    backend.reset(latency_ms=30)  # outage off
    for i in range(23, 26):  # not kept: Reservoir has no record and asks the backend
        with pytest.raises(ClientError) as ei:
            s3.head_object(Bucket="bt", Key=f"t{i:02d}")
        assert err_status(ei.value) == 404
    doc = srv.sync("bt/", timeout=60)
    assert doc["parked"] == []
    assert_backend_holds(backend, "through/", expected, "i")


def test_budget_full_reject(backend, make_server):
    """dirty_max_objects = 20 with the backend down: writes beyond the budget get 503
    SlowDown with Retry-After at once; once the backend is back they are accepted again, and
    everything acknowledged reaches the backend."""
    backend.reset(latency_ms=30)
    srv = make_server(backend.mount("/br", f"s3://{BUCKET}/reject", concurrency=4,
                                    on_full="reject", dirty_max_objects=20))
    s3 = srv.client()  # retries off (total_max_attempts 1): every 503 is seen
    backend.proxy.outage("refuse")
    expected = {}
    for i in range(20):
        data = random.Random(40_000 + i).randbytes(2 * KiB)
        s3.put_object(Bucket="br", Key=f"r{i:02d}", Body=data, Metadata={"i": str(i)})
        expected[f"r{i:02d}"] = (data, i)
    rejected = {}
    for i in range(20, 25):
        key, data = f"r{i:02d}", random.Random(40_000 + i).randbytes(2 * KiB)
        t = time.monotonic()
        with pytest.raises(ClientError) as ei:
            s3.put_object(Bucket="br", Key=key, Body=data, Metadata={"i": str(i)})
        took = time.monotonic() - t
        e = ei.value
        assert (err_status(e), err_code(e)) == (503, "SlowDown"), e.response
        assert headers_of(e.response).get("retry-after"), headers_of(e.response)
        assert took < 5, took
        rejected[key] = (data, i)
    st = srv.persist_status("br/")
    assert st["dirty_objects"] == 20 and st["mounts"][0]["retries"] > 0, st

    backend.proxy.outage("off")
    for key in rejected:  # not kept: Reservoir has no record and asks the backend
        with pytest.raises(ClientError) as ei:
            s3.head_object(Bucket="br", Key=key)
        assert err_status(ei.value) == 404
    # the rejected writes, retried the way a client would (after Retry-After), get in
    deadline = time.monotonic() + 60
    for key, (data, i) in rejected.items():
        while True:
            try:
                s3.put_object(Bucket="br", Key=key, Body=data, Metadata={"i": str(i)})
                expected[key] = (data, i)
                break
            except ClientError as e:
                assert err_code(e) == "SlowDown" and time.monotonic() < deadline, e.response
                time.sleep(float(headers_of(e.response).get("retry-after", "1")))
    doc = srv.sync("br/", timeout=60)
    assert doc["parked"] == []
    assert_backend_holds(backend, "reject/", expected, "i")


# --------------------------------------------------------------------------
# 6. Parked: the backend bucket is missing, then created; retry-parked
# --------------------------------------------------------------------------

def test_parked_missing_bucket_then_retry(backend, make_server):
    backend.reset(latency_ms=5)
    missing = f"wb-missing-{random.randrange(1 << 30):x}"
    srv = make_server(backend.mount("/pk", f"s3://{missing}/p", concurrency=4))
    s3 = srv.client()
    objs = {f"dir/p{i}": (random.Random(50_000 + i).randbytes(1000 + i), i) for i in range(5)}
    for k, (data, i) in objs.items():
        s3.put_object(Bucket="pk", Key=k, Body=data, Metadata={"i": str(i)})

    wait_for(lambda: len(srv.persist_status("pk/")["parked"]) == len(objs), 20, "5 parked objects")
    cp = srv.cli("persist-status", "pk/", "--json")
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    doc = json.loads(cp.stdout)
    parked = {p["key"]: p["reason"] for p in doc["parked"]}
    assert set(parked) == {f"pk/{k}" for k in objs}, doc
    assert all("NoSuchBucket" in r for r in parked.values()), parked
    summary("parked-status", dirty_objects=doc["dirty_objects"], reason=next(iter(parked.values())),
            metrics_dirty=metric(srv.metrics(), "reservoir_dirty_objects"))
    # the admin barrier answers at once: nothing pending, the parked ones listed
    status, body = srv.admin("POST", "/admin/v1/sync?prefix=pk/&wait=true&timeout=10")
    assert status == 200, body
    sdoc = json.loads(body)
    assert sdoc["done"] is False and sdoc["pending"] == 0, sdoc
    assert {p["key"] for p in sdoc["parked"]} == set(parked), sdoc
    for k, (data, _) in objs.items():
        got = s3.get_object(Bucket="pk", Key=k)
        assert got["Body"].read() == data
        assert persist_state(got) == "parked"

    # a delete of a parked object parks as well (its tombstone cannot reach the bucket)
    s3.delete_object(Bucket="pk", Key="dir/p4")
    gone = objs.pop("dir/p4")
    wait_for(lambda: any(p["key"] == "pk/dir/p4" and "NoSuchBucket" in p["reason"]
                         for p in srv.persist_status("pk/")["parked"]) and
             srv.persist_status("pk/")["tombstones"] == 0, 20, "the tombstone parked")
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket="pk", Key="dir/p4")
    assert err_status(ei.value) == 404

    t = time.monotonic()
    cp = srv.cli("sync", "pk/", "--wait", "--timeout", "10")
    assert cp.returncode == 2, (cp.returncode, cp.stdout, cp.stderr)
    assert time.monotonic() - t < 25
    assert "parked" in cp.stdout and "NoSuchBucket" in cp.stdout, cp.stdout

    # fix the backend and retry
    backend.create_bucket(missing)
    try:
        cp = srv.cli("retry-parked", "pk/")
        assert cp.returncode == 0, (cp.stdout, cp.stderr)
        assert "retried 5" in cp.stdout, cp.stdout  # 4 objects and 1 tombstone
        cp = srv.cli("sync", "pk/", "--wait", "--timeout", "30")
        assert cp.returncode == 0, (cp.returncode, cp.stdout, cp.stderr)
        assert srv.persist_status("pk/")["parked"] == []
        listed = {k: v for k, v in backend.direct.list_objects_v2(Bucket=missing).items() if k == "Contents"}
        have = {o["Key"] for o in listed.get("Contents", [])}
        assert have == {f"p/{k}" for k in objs}, have
        for k, (data, i) in objs.items():
            o = backend.direct.get_object(Bucket=missing, Key=f"p/{k}")
            assert o["Body"].read() == data and o["Metadata"] == {"i": str(i)}
            assert persist_state(s3.head_object(Bucket="pk", Key=k)) == "persisted"
        with pytest.raises(ClientError) as ei:
            s3.head_object(Bucket="pk", Key="dir/p4")
        assert err_status(ei.value) == 404 and gone
        m = srv.metrics()
        assert metric(m, "reservoir_persist_ops_total", mount="/pk", result="parked") == 6
        assert metric(m, "reservoir_persist_ops_total", mount="/pk", result="ok") == 5
    finally:
        delete_bucket_quietly(backend.direct, missing)


def test_non_ascii_metadata_reaches_the_backend_encoded_and_reads_back(backend, make_server):
    """S3 takes header values in US-ASCII only (raw UTF-8 fails AWS's signature check, which
    parked the object for good): non-ASCII metadata travels as RFC 2047 words, as S3 returns
    it, and a cold read through Reservoir decodes it."""
    import http.client
    from conftest import HOST, sign_headers
    backend.reset(latency_ms=5)
    srv = make_server(backend.mount("/mb", f"s3://{BUCKET}/mb", concurrency=2))
    value = "café ✓"
    path = "/mb/utf8"
    hdrs = sign_headers("PUT", f"{srv.endpoint}{path}", {"x-amz-meta-name": value,
                                                         "content-disposition": f'attachment; filename="{value}"'},
                        b"x")
    hdrs["x-amz-meta-name"] = value.encode()
    hdrs["content-disposition"] = f'attachment; filename="{value}"'.encode()
    conn = http.client.HTTPConnection(HOST, srv.port, timeout=30)
    try:
        conn.request("PUT", path, body=b"x", headers=hdrs)
        r = conn.getresponse()
        assert r.status == 200, (r.status, r.read())
    finally:
        conn.close()
    srv.sync("mb/")
    assert srv.persist_status("mb/")["parked"] == []
    on_backend = backend.direct.head_object(Bucket=BUCKET, Key="mb/utf8")
    assert on_backend["Metadata"]["name"].startswith("=?UTF-8?B?"), on_backend["Metadata"]
    # A second server, with nothing cached, reads it from the backend.
    cold = make_server(backend.mount("/mb", f"s3://{BUCKET}/mb", concurrency=2))
    conn = http.client.HTTPConnection(HOST, cold.port, timeout=30)
    try:
        hdrs = sign_headers("HEAD", f"{cold.endpoint}{path}", {}, b"")
        conn.request("HEAD", path, headers=hdrs)
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
        # http.client reads header bytes as Latin-1
        assert r.getheader("x-amz-meta-name").encode("latin-1") == value.encode()
        assert r.getheader("content-disposition").encode("latin-1") == f'attachment; filename="{value}"'.encode()
    finally:
        conn.close()


def test_buckets_of_a_root_s3_mount_are_listed_past_the_first_page(backend, make_server):
    """A root mount on an S3 backend lists its buckets as the backend's top-level prefixes:
    every page of them, not only the first 1,000."""
    from concurrent.futures import ThreadPoolExecutor
    backend.reset(latency_ms=0)
    prefix = f"root{random.randrange(1 << 30):x}"
    names = [f"b{i:04d}" for i in range(1005)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: backend.direct.put_object(Bucket=BUCKET, Key=f"{prefix}/{n}/o", Body=b"x"), names))
    srv = make_server(backend.mount("/", f"s3://{BUCKET}/{prefix}", concurrency=2))
    listed = [b["Name"] for b in srv.client().list_buckets()["Buckets"]]
    assert sorted(listed) == names, (len(listed), listed[-3:])
