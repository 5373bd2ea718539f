#!/usr/bin/env python3
"""Experiment 5: a three-stage data pipeline on S3, run 3 times straight against
the slow backend (moto_server behind tests/tools/slow_s3_proxy.py, 30 ms median
latency) and 3 times through Reservoir (write-back, durability fsync, draining
to that backend), interleaved, in one run. Each round also runs it against
Debian's nginx on the same machine (static files and WebDAV PUT, no fsync, no
signature checks), which shows the run-to-run spread that this client and
machine give with no cache and no backend in the way.

  stage 1  PUT N CSV-like files of incompressible rows (generated before the clock starts)
  stage 2  GET each file, transform it (upper-case, reversed row order), PUT the result
  stage 3  GET every result and aggregate (rows, bytes, a column sum) into one summary PUT

The client is bench/s3load.py's asyncio client (raw keep-alive connections,
SigV4), with C concurrent requests per stage.

    python3 bench/exp_pipeline.py [--files 500] [--file-size 16384] [--concurrency 16] [--runs 3] [--warmup-runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import report  # noqa: E402
import s3load  # noqa: E402


def make_files(n: int, size: int) -> list[bytes]:
    out = []
    for i in range(n):
        rows, total = [], 0
        while total < size:
            r = f"{i},{int.from_bytes(os.urandom(4), 'little')},{os.urandom(12).hex()}\n"
            rows.append(r)
            total += len(r)
        out.append("".join(rows).encode()[:size])
    return out


async def pool(endpoint: str, signer, jobs: list, concurrency: int):
    """jobs: async callables job(request) run by `concurrency` workers, each with
    one keep-alive connection; request(method, path, body) -> (status, body)."""
    u = urllib.parse.urlparse(endpoint)
    queue = list(reversed(jobs))
    errors = []

    async def worker():
        conn = s3load.Conn(u.hostname, u.port)

        async def request(method, path, body=b""):
            st, _, data = await conn.request(method, path, signer.headers(method, u.netloc, path), body)
            if not 200 <= st < 300:
                errors.append(f"{method} {path}: {st}")
            return st, data

        while queue:
            await queue.pop()(request)
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        raise RuntimeError(f"{len(errors)} errors, first: {errors[0]}")


def pipeline(endpoint: str, signer, bucket: str, prefix: str, files: list[bytes], concurrency: int) -> dict:
    base = f"/{bucket}/{prefix}"
    t = {}

    def put_job(i):
        async def job(req):
            await req("PUT", f"{base}in/{i:05d}.csv", files[i])
        return job

    def transform_job(i):
        async def job(req):
            _, data = await req("GET", f"{base}in/{i:05d}.csv")
            assert data == files[i], "stage 2 read back different bytes"
            out = b"\n".join(reversed(data.rstrip(b"\n").split(b"\n"))).upper() + b"\n"
            await req("PUT", f"{base}out/{i:05d}.csv", out)
        return job

    totals = {"rows": 0, "bytes": 0, "sum": 0}

    def read_job(i):
        async def job(req):
            _, data = await req("GET", f"{base}out/{i:05d}.csv")
            totals["rows"] += data.count(b"\n")
            totals["bytes"] += len(data)
            totals["sum"] += sum(int(line.split(b",")[1]) for line in data.split(b"\n")[:3] if line.count(b",") >= 2)
        return job

    async def summary(req):
        await req("PUT", f"{base}summary.json", json.dumps(totals).encode())

    n = len(files)
    t0 = time.perf_counter()
    asyncio.run(pool(endpoint, signer, [put_job(i) for i in range(n)], concurrency))
    t1 = time.perf_counter()
    asyncio.run(pool(endpoint, signer, [transform_job(i) for i in range(n)], concurrency))
    t2 = time.perf_counter()
    asyncio.run(pool(endpoint, signer, [read_job(i) for i in range(n)], concurrency))
    asyncio.run(pool(endpoint, signer, [summary], 1))
    t3 = time.perf_counter()
    return {"stage1": t1 - t0, "stage2": t2 - t1, "stage3": t3 - t2, "total": t3 - t0, "totals": totals}


def run(nfiles: int, size: int, concurrency: int, runs: int, latency_ms: float, warmup_runs: int) -> dict:
    wd = harness.new_dir("exp-pipeline-")
    backend = harness.Backend(wd, latency_ms=latency_ms, buckets=("pipe", "direct"))
    mount = backend.mount("/pipe", "pipe/", 100)
    rsv = harness.Reservoir(wd, durability="fsync", mounts=mount)
    ngx = harness.Nginx(wd)
    files = make_files(nfiles, size)
    out = {"direct": [], "reservoir": [], "nginx": [], "warmup": {"direct": [], "reservoir": [], "nginx": []}}
    try:
        # Warm-up runs first (same work, other keys; reported, not counted):
        # the first run of each path pays for new connections, the index's
        # first files and the client's own warm-up.
        for k in range(-warmup_runs, runs):
            dest = out if k >= 0 else out["warmup"]
            name = f"run{k}/" if k >= 0 else f"warmup{-k}/"
            dest["direct"].append(pipeline(backend.proxy_url, s3load.Signer("moto", "moto"), "direct",
                                           name, files, concurrency))
            print(f"direct {name}: {dest['direct'][-1]}", file=sys.stderr)
            dest["reservoir"].append(pipeline(rsv.url, s3load.Signer(harness.ACCESS_KEY, harness.SECRET_KEY), "pipe",
                                              name, files, concurrency))
            print(f"reservoir {name}: {dest['reservoir'][-1]}", file=sys.stderr)
            # Let the drain finish (untimed) so that it does not load the shared
            # backend during the next direct run; this also checks it lands.
            t = time.perf_counter()
            barrier = rsv.sync("pipe/")
            dest["reservoir"][-1]["drain_seconds"] = time.perf_counter() - t
            dest["reservoir"][-1]["barrier_done"] = barrier.get("done")
            dest["nginx"].append(pipeline(ngx.url, s3load.Signer("nginx", "nginx"), "pipe", name, files, concurrency))
            print(f"nginx {name}: {dest['nginx'][-1]}", file=sys.stderr)
        out["rss_mb"] = rsv.vmhwm_mb()
    finally:
        harness.stop_all()
        shutil.rmtree(wd, ignore_errors=True)
    return out


def warmup_note(raw: dict) -> str:
    w = raw.get("warmup", {})
    if not w or not w.get("direct"):
        return "No warm-up run."
    d = ", ".join(f"{r['total']:.3f}" for r in w["direct"])
    r = ", ".join(f"{x['total']:.3f}" for x in w["reservoir"])
    n = ", ".join(f"{x['total']:.3f}" for x in w.get("nginx", []))
    return (f"Before the counted runs, {len(w['direct'])} warm-up run(s) per path, same work on other keys, "
            f"not counted: direct {d} s, Reservoir {r} s" + (f", nginx {n} s." if n else "."))


def summarize(raw: dict, nfiles: int, size: int, concurrency: int) -> dict:
    cmd = report.command_line()
    rows = []
    paths = [p for p in ("direct", "reservoir", "nginx") if raw.get(p)]
    for path in paths:
        for k, r in enumerate(raw[path]):
            rows.append([path, k + 1, r["stage1"], r["stage2"], r["stage3"], r["total"]])
    stats = {}
    for path in paths:
        tot = [r["total"] for r in raw[path]]
        mean = statistics.mean(tot)
        stats[path] = {"mean": mean, "min": min(tot), "max": max(tot), "spread_pct": (max(tot) - min(tot)) / mean * 100}
        rows.append([f"{path} mean (min-max spread)", "", statistics.mean(r["stage1"] for r in raw[path]),
                     statistics.mean(r["stage2"] for r in raw[path]), statistics.mean(r["stage3"] for r in raw[path]),
                     f"{mean:.3f} ({stats[path]['spread_pct']:.1f}%)"])
    md = (f"{nfiles} files of {size} B, {concurrency} concurrent requests per stage; seconds. After each "
          "Reservoir run the persistence barrier (`sync pipe/`, untimed) waits until everything is in the "
          "backend, so that the drain does not load the backend during the next direct run. nginx (static "
          "files, WebDAV PUT without fsync, no signature checks) runs the same pipeline with the same client "
          "in each round: its spread is what this client and machine give with no cache and no backend. " +
          warmup_note(raw) + "\n\n" +
          report.table(["path", "run", "stage 1 (PUT)", "stage 2 (GET+transform+PUT)", "stage 3 (GET+aggregate)",
                        "total"], rows))
    speed = stats["direct"]["mean"] / stats["reservoir"]["mean"]
    spread = stats["reservoir"]["spread_pct"]
    floor = f", nginx: {stats['nginx']['spread_pct']:.1f}%" if "nginx" in stats else ""
    goals = [report.goal("pipeline >= 10x faster through Reservoir", f"{speed:.2f}x", speed >= 10, cmd),
             report.goal("pipeline spread (max-min) < 2% of the mean, through Reservoir",
                         f"{spread:.1f}% (direct: {stats['direct']['spread_pct']:.1f}%{floor})", spread < 2, cmd),
             report.goal("server RSS < 500 MB (VmHWM)", f"{raw['rss_mb']:.0f} MB", raw["rss_mb"] < 500, cmd)]
    png = report.PLOTS / "pipeline.png"
    report.plot(png, "Three-stage pipeline: total seconds per run", "run", "seconds",
                {f"{path} total": [(k + 1, r["total"]) for k, r in enumerate(raw[path])] for path in paths}, logx=False, logy=True)
    return {"markdown": md, "goals": goals, "command": cmd, "stats": stats,
            "plot": str(png.relative_to(report.ROOT))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--file-size", type=int, default=16384)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-ms", type=float, default=30)
    ap.add_argument("--warmup-runs", type=int, default=1, help="untimed runs per path before the counted ones")
    a = ap.parse_args()
    raw = run(a.files, a.file_size, a.concurrency, a.runs, a.latency_ms, a.warmup_runs)
    res = summarize(raw, a.files, a.file_size, a.concurrency)
    res["raw"] = raw
    res["title"] = "Pipeline"
    return report.finish("exp_pipeline", res)


if __name__ == "__main__":
    sys.exit(main())
