#!/usr/bin/env python3
"""The read cache (issue: read-through by page): GET latency of a cache hit, a
cold miss (the first read of an object Reservoir has never seen), and straight
from the backend, for 10 KiB and 16 MiB objects; and, for ranged reads of a
large object, the bytes fetched from the backend versus the bytes served.

The backend is moto_server behind the slow proxy (30 ms median latency). Objects
are put into the backend directly (another writer), by `reservoir bench get`
against the proxy, which also measures the direct GETs; the same run then reads
every object through Reservoir once (cold, `--sequential --no-prepare`) and once
more (hit), all at concurrency 1.

    python3 bench/exp_read_cache.py [--small 200] [--large 12]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import report  # noqa: E402

MiB = 1 << 20


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def ranged(rsv: harness.Reservoir, backend: harness.Backend, n: int) -> dict:
    """n random 64 KiB ranges of a 256 MiB object put straight into the backend."""
    import boto3
    from botocore.config import Config
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    direct = boto3.client("s3", endpoint_url=backend.moto_url, aws_access_key_id="moto",
                          aws_secret_access_key="moto", region_name="us-east-1", config=cfg)
    data = os.urandom(256 * MiB)
    direct.put_object(Bucket="bench", Key="rc/ranged/big", Body=data)
    s3 = boto3.client("s3", endpoint_url=rsv.url, aws_access_key_id=harness.ACCESS_KEY,
                      aws_secret_access_key=harness.SECRET_KEY, region_name="us-east-1", config=cfg)
    metrics = f"http://127.0.0.1:{rsv.admin_port}/metrics"
    before = metric(urllib.request.urlopen(metrics).read().decode(), "reservoir_cache_backend_read_bytes_total")
    rng = random.Random(7)
    served = 0
    for _ in range(n):
        first = rng.randrange(0, len(data) - 65536)
        body = s3.get_object(Bucket="rcache", Key="ranged/big", Range=f"bytes={first}-{first + 65535}")["Body"].read()
        assert body == data[first:first + 65536], "ranged read differs"
        served += len(body)
    after = metric(urllib.request.urlopen(metrics).read().decode(), "reservoir_cache_backend_read_bytes_total")
    again_before = after
    rng = random.Random(7)
    for _ in range(n):
        first = rng.randrange(0, len(data) - 65536)
        s3.get_object(Bucket="rcache", Key="ranged/big", Range=f"bytes={first}-{first + 65535}")["Body"].read()
    again = metric(urllib.request.urlopen(metrics).read().decode(), "reservoir_cache_backend_read_bytes_total")
    return {"object_bytes": len(data), "reads": n, "served": served, "fetched": int(after - before),
            "fetched_again": int(again - again_before)}


def run(small: int, large: int, ranges: int) -> dict:
    wd = harness.new_dir("exp-read-cache-")
    backend = harness.Backend(wd, latency_ms=30)
    rsv = harness.Reservoir(wd, durability="fsync", mounts=backend.mount("/rcache", "bench/rc/"), name="rsv")
    out = {}
    try:
        for label, size, n in (("10KiB", "10KiB", small), ("16MiB", "16MiB", large)):
            common = ["get", "--obj-size", size, "--objects", n, "--ops", n, "--concurrency", "1",
                      "--sequential", "--warmup", "0s", "--verify", "--seed", "42"]
            direct = harness.bench([*common, "--endpoint", backend.proxy_url, "--bucket", "bench",
                                    "--access-key", "moto", "--secret-key", "moto", "--prefix", f"rc/{label}/"],
                                   report.OUT / f"exp_read_cache_{label}_direct.bench.json")
            via = ["--endpoint", rsv.url, "--bucket", "rcache", *harness.reservoir_creds(), "--prefix", f"{label}/",
                   "--no-prepare"]
            cold = harness.bench([*common, *via], report.OUT / f"exp_read_cache_{label}_cold.bench.json")
            hit = harness.bench([*common, *via], report.OUT / f"exp_read_cache_{label}_hit.bench.json")
            out[label] = {"direct": report.step(direct, "A", "get", 1), "cold": report.step(cold, "A", "get", 1),
                          "hit": report.step(hit, "A", "get", 1)}
        out["ranged"] = ranged(rsv, backend, ranges)
        out["rss_mb"] = rsv.vmhwm_mb()
    finally:
        harness.stop_all()
        shutil.rmtree(wd, ignore_errors=True)
    return out


def summarize(raw: dict) -> dict:
    cmd = report.command_line()
    rows = []
    for label in ("10KiB", "16MiB"):
        r = raw[label]
        for kind, name in (("hit", "cache hit"), ("cold", "cold miss (first read)"), ("direct", "straight from the backend")):
            s = r[kind]
            rows.append([label, name, s["latency_ms"]["p50"], s["latency_ms"]["p99"], s["ops"],
                         s.get("mb_per_s", 0.0), s["errors"]])
    md = report.table(["object", "GET", "p50 ms", "p99 ms", "reads", "MB/s", "errors"], rows)
    g = raw["ranged"]
    md += ("\n\nRanged reads: {reads} random 64 KiB ranges of a {mib} MiB object the cache had never seen "
           "(1 MiB pages):\n\n").format(reads=g["reads"], mib=g["object_bytes"] // MiB)
    md += report.table(["bytes served", "fetched from the backend (first pass)", "fetched (same ranges again)",
                        "object size"], [[g["served"], g["fetched"], g["fetched_again"], g["object_bytes"]]])
    md += (f"\n\nThe first pass fetches only the pages the ranges touch (each 64 KiB range touches one or two "
           f"1 MiB pages), so the backend sends {g['fetched'] / max(g['served'], 1):.1f}x the bytes served "
           f"instead of the whole {g['object_bytes'] // MiB} MiB; the second pass fetches nothing. "
           f"Server peak RSS: {raw['rss_mb']:.0f} MB.")
    h10, d10 = raw["10KiB"]["hit"]["latency_ms"]["p50"], raw["10KiB"]["direct"]["latency_ms"]["p50"]
    c10 = raw["10KiB"]["cold"]["latency_ms"]["p50"]
    goals = [
        report.goal("GET hit 10 KiB p50 < 0.2 ms at c=1 (read cache run)", f"{h10:.3f} ms", h10 < 0.2, cmd),
        report.goal("cold miss 10 KiB costs one backend round trip (p50 within 1.3x of direct)",
                    f"{c10:.1f} ms vs {d10:.1f} ms", c10 <= 1.3 * d10, cmd),
        report.goal("ranged reads fetch only touched pages; a second pass fetches nothing",
                    f"{g['fetched'] // MiB} MiB for {g['served'] // 1024} KiB served, then {g['fetched_again']} B",
                    g["fetched_again"] == 0 and g["fetched"] <= 2 * g["reads"] * MiB, cmd),
    ]
    png = report.PLOTS / "read_cache.png"
    sizes = {"10KiB": 10 / 1024, "16MiB": 16}
    report.plot(png, "GET p50 at concurrency 1: cache hit, cold miss, backend", "object size (MiB)", "p50 (ms)",
                {name: [(sizes[l], raw[l][kind]["latency_ms"]["p50"]) for l in ("10KiB", "16MiB")]
                 for kind, name in (("hit", "cache hit"), ("cold", "cold miss"), ("direct", "backend"))},
                logx=True, logy=True)
    return {"title": "Read cache", "command": cmd, "markdown": md, "goals": goals, "raw": raw,
            "plot": str(png.relative_to(report.ROOT))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=200, help="10 KiB objects")
    ap.add_argument("--large", type=int, default=12, help="16 MiB objects")
    ap.add_argument("--ranges", type=int, default=100, help="random ranged reads")
    a = ap.parse_args()
    result = summarize(run(a.small, a.large, a.ranges))
    report.finish("exp_read_cache", result)


if __name__ == "__main__":
    main()
