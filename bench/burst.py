#!/usr/bin/env python3
"""Burst absorption: N small PUTs as fast as C clients can send them, straight to a
backend that throttles PUTs (the slow-backend proxy in front of moto_server), and
through Reservoir (write-back to the same backend), in one run.

Reports client PUT latency p50/p99 and errors for both paths, the backend's peak
PUT rate, and the time from the end of the burst to the persistence barrier.

    python3 bench/burst.py [--puts 2000] [--concurrency 64] [--size 10240]
                           [--backend-put-rps 50] [--json out.json] [--plot out.png]

--plot draws, against time from the start of each burst, the PUTs acknowledged
to the client (both paths) and the PUTs that reached the backend (both paths).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import report  # noqa: E402
import s3load  # noqa: E402


def client(url: str, key: str, secret: str, concurrency: int):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name="us-east-1", config=Config(max_pool_connections=concurrency + 8))


def body_for(i: int, size: int) -> bytes:
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def burst(endpoint: str, signer, bucket: str, n: int, size: int, concurrency: int, verify_get: bool) -> dict:
    """n PUTs (each with x-amz-meta-i) from `concurrency` keep-alive connections;
    with verify_get, each PUT is followed by a GET of the same key on the same
    connection, compared byte for byte. Retries like the SDKs' standard mode."""
    ops = []
    for i in range(n):
        key = f"/{bucket}/obj/{i:06d}"
        ops.append(("PUT", key, body_for(i, size), {"x-amz-meta-i": str(i)}, None))
        if verify_get:
            ops.append(("GET", key, b"", {}, (lambda d: lambda st, got: got == d)(body_for(i, size))))
    puts = [o for o in ops if o[0] == "PUT"]
    if not verify_get:
        return asyncio.run(s3load.run_ops(endpoint, signer, puts, concurrency))
    # Interleave so that each worker takes a PUT and then its GET.
    r = asyncio.run(s3load.run_ops(endpoint, signer, ops, concurrency, pairs=True))
    return r


def verify_backend(moto, n: int, size: int) -> int:
    """Objects missing or different in the backend."""
    bad = 0
    for i in range(n):
        try:
            r = moto.get_object(Bucket="burst", Key=f"obj/{i:06d}")
            if r["Body"].read() != body_for(i, size) or r["Metadata"].get("i") != str(i):
                bad += 1
        except ClientError:
            bad += 1
    return bad


def run(puts: int, concurrency: int, size: int, backend_put_rps: int, latency_ms: float) -> dict:
    env = harness.Env(put_rps=backend_put_rps, latency_ms=latency_ms, persist_ops=backend_put_rps,
                      concurrency=16)
    try:
        moto = client(env.moto_url, "moto", "moto", 8)
        moto.create_bucket(Bucket="burst")
        moto.create_bucket(Bucket="direct")
        direct_start = time.time()
        direct = burst(env.proxy_url, s3load.Signer("moto", "moto"), "direct", puts, size, concurrency, False)
        direct_stats = env.control("GET", "/stats")
        direct["backend_puts_per_second"] = since(direct_stats, direct_start)
        env.control("POST", "/reset-stats")
        through_start = time.time()
        through = burst(env.reservoir_url, s3load.Signer(harness.ACCESS_KEY, harness.SECRET_KEY), "burst", puts, size,
                        concurrency, True)
        t = time.perf_counter()
        barrier = env.sync("burst/")
        through["drain_seconds"] = time.perf_counter() - t
        through["barrier"] = barrier
        stats = env.control("GET", "/stats")
        through["backend_puts_per_second"] = since(stats, through_start)
        through["backend_peak_put_rps"] = stats.get("peak_put_rps")
        through["backend_503s"] = stats.get("slowdown_503")
        direct["backend_503s"] = direct_stats.get("slowdown_503")
        through["backend_mismatches"] = verify_backend(moto, puts, size)
        direct["backend_peak_put_rps"] = direct_stats.get("peak_put_rps")
        return {"puts": puts, "concurrency": concurrency, "size": size, "backend_put_rps": backend_put_rps,
                "latency_ms": latency_ms, "direct": direct, "reservoir": through}
    finally:
        harness.stop_all()


def since(stats: dict, start: float) -> list[int]:
    """The proxy's PUTs forwarded to the backend in each wall-clock second from
    the one `start` falls in to the last one of its history."""
    hist, end = stats.get("per_second_puts") or [], stats.get("per_second_end", 0)
    first = end - len(hist) + 1
    return hist[max(0, int(start) - first):]


def cumulative_per_second(per_second: list[int]) -> list[tuple[float, float]]:
    pts, total = [(0.0, 0.0)], 0
    for i, n in enumerate(per_second):
        total += n
        pts.append((i + 1.0, float(total)))
    return pts


def cumulative(done_at: list[float]) -> list[tuple[float, float]]:
    # One point per 1% of the answers (and the last one) keeps the plot's data small.
    step = max(1, len(done_at) // 100)
    pts = [(0.0, 0.0)] + [(t, float(i + 1)) for i, t in enumerate(done_at) if (i + 1) % step == 0]
    if done_at and pts[-1][1] != len(done_at):
        pts.append((done_at[-1], float(len(done_at))))
    return pts


def plot(r: dict, png: Path) -> None:
    d, t = r["direct"], r["reservoir"]
    # The direct burst's backend count ends once it is done; trim the idle tail.
    dback = cumulative_per_second(d["backend_puts_per_second"])
    while len(dback) > 2 and dback[-1][1] == dback[-2][1]:
        dback.pop()
    report.plot(png, f"Burst of {r['puts']} PUTs at concurrency {r['concurrency']} to a backend taking "
                f"{r['backend_put_rps']} PUT/s", "seconds from the start of the burst", "PUTs (cumulative)",
                {"straight to the backend: acknowledged": cumulative(d["done_at"]),
                 "straight to the backend: in the backend": dback,
                 "through Reservoir: acknowledged": cumulative(t["done_at"]),
                 "through Reservoir: in the backend (drain)": cumulative_per_second(t["backend_puts_per_second"])},
                logx=False, logy=False)


def markdown(r: dict) -> str:
    d, t = r["direct"], r["reservoir"]
    return "\n".join([
        f"{r['puts']} PUTs of {r['size']} B at concurrency {r['concurrency']}; backend: moto_server behind the "
        f"slow proxy ({r['latency_ms']:.0f} ms median latency, {r['backend_put_rps']} PUT/s, 503 SlowDown above).",
        "",
        "| path | PUT p50 | PUT p99 | client errors | backend peak PUT/s | drain to barrier |",
        "|---|---|---|---|---|---|",
        f"| straight to the throttled backend | {d['p50_ms']:.2f} ms | {d['p99_ms']:.2f} ms | {d['errors']} {d['errors_by_code'] or ''} | {d['backend_peak_put_rps']} | - |",
        f"| through Reservoir (write-back) | {t['p50_ms']:.2f} ms | {t['p99_ms']:.2f} ms | {t['errors']} {t['errors_by_code'] or ''} | {t['backend_peak_put_rps']} | {t['drain_seconds']:.1f} s |",
        "",
        f"p50 ratio (direct / Reservoir): {d['p50_ms'] / t['p50_ms']:.1f}x; read-after-write mismatches: {t['bad']}; "
        f"objects missing or different in the backend after the barrier: {t['backend_mismatches']}.",
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--puts", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--backend-put-rps", type=int, default=50)
    ap.add_argument("--latency-ms", type=float, default=30)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", help="draw the PUTs acknowledged and in the backend over time here (PNG)")
    a = ap.parse_args()
    r = run(a.puts, a.concurrency, a.size, a.backend_put_rps, a.latency_ms)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2))
    print(markdown(r))
    if a.plot:
        png = Path(a.plot).resolve()
        plot(r, png)
        print(f"\n![PUTs acknowledged and in the backend over time]({png.relative_to(report.ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
