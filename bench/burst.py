#!/usr/bin/env python3
"""Burst absorption: N small PUTs as fast as C clients can send them, straight to a
backend that throttles PUTs (the slow-backend proxy in front of moto_server), and
through Reservoir (write-back to the same backend), in one run.

Reports client PUT latency p50/p99 and errors for both paths, the backend's peak
PUT rate, and the time from the end of the burst to the persistence barrier.

    python3 bench/burst.py [--puts 2000] [--concurrency 64] [--size 10240]
                           [--backend-put-rps 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def client(url: str, key: str, secret: str, concurrency: int):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name="us-east-1",
                        config=Config(max_pool_connections=concurrency + 8,
                                      retries={"mode": "standard", "max_attempts": 3}))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def body_for(i: int, size: int) -> bytes:
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def burst(s3, bucket: str, n: int, size: int, concurrency: int, verify_get: bool):
    lat, errors, bad_reads = [], {}, 0

    def one(i: int):
        nonlocal bad_reads
        data = body_for(i, size)
        t = time.perf_counter()
        try:
            s3.put_object(Bucket=bucket, Key=f"obj/{i:06d}", Body=data, Metadata={"i": str(i)})
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "?")
            errors[code] = errors.get(code, 0) + 1
            return
        except Exception as e:  # connection errors
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            return
        lat.append((time.perf_counter() - t) * 1000)
        if verify_get:
            got = s3.get_object(Bucket=bucket, Key=f"obj/{i:06d}")["Body"].read()
            if got != data:
                bad_reads += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as ex:
        list(ex.map(one, range(n)))
    return {"seconds": time.perf_counter() - t0, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "mean_ms": statistics.mean(lat) if lat else float("nan"), "ok": len(lat),
            "errors": sum(errors.values()), "errors_by_code": errors, "bad_reads": bad_reads}


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
        direct = burst(client(env.proxy_url, "moto", "moto", concurrency), "direct", puts, size, concurrency, False)
        direct_stats = env.control("GET", "/stats")
        env.control("POST", "/reset-stats")
        res = client(env.reservoir_url, harness.ACCESS_KEY, harness.SECRET_KEY, concurrency)
        through = burst(res, "burst", puts, size, concurrency, True)
        t = time.perf_counter()
        barrier = env.sync("burst/")
        through["drain_seconds"] = time.perf_counter() - t
        through["barrier"] = barrier
        stats = env.control("GET", "/stats")
        through["backend_peak_put_rps"] = stats.get("peak_put_rps")
        through["backend_503s"] = stats.get("throttled", stats.get("slowdowns"))
        through["backend_mismatches"] = verify_backend(moto, puts, size)
        direct["backend_peak_put_rps"] = direct_stats.get("peak_put_rps")
        return {"puts": puts, "concurrency": concurrency, "size": size, "backend_put_rps": backend_put_rps,
                "latency_ms": latency_ms, "direct": direct, "reservoir": through}
    finally:
        harness.stop_all()


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
        f"p50 ratio (direct / Reservoir): {d['p50_ms'] / t['p50_ms']:.1f}x; read-after-write mismatches: {t['bad_reads']}; "
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
    a = ap.parse_args()
    r = run(a.puts, a.concurrency, a.size, a.backend_put_rps, a.latency_ms)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2))
    print(markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
