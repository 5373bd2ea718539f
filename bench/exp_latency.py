#!/usr/bin/env python3
"""Experiments 1 and 2: latency of 10 KiB PUTs (`put`) or of reads right after
writes (`raw`: each worker PUTs a key and GETs it back on the same connection;
also GETs of cached objects, `get`) versus concurrency, straight to the slow S3
backend (moto_server behind tests/tools/slow_s3_proxy.py, 30 ms median latency)
and through Reservoir in write-back mode in front of that backend, with
durability = "fsync" and with durability = "none", all in one run.

    python3 bench/exp_latency.py put [--concurrency 1,4,16,64,256] [--duration 5s]
    python3 bench/exp_latency.py raw
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import report  # noqa: E402


def fdatasync_floor_ms(d: Path, size: int = 10240, n: int = 400) -> dict:
    """This disk's latency for write(10 KiB) + fdatasync, the floor of a durable PUT."""
    import os
    import statistics
    import time
    f = d / "fdatasync.bin"
    fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o644)
    buf = os.urandom(size)
    lat = []
    try:
        # Preallocated, as a write-ahead log is: fdatasync then flushes data, not the file size.
        os.posix_fallocate(fd, 0, size * n)
        os.fsync(fd)
        for i in range(n):
            t = time.perf_counter()
            os.pwrite(fd, buf, i * size)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        f.unlink()
    lat.sort()
    return {"p50": statistics.median(lat), "p99": lat[int(len(lat) * 0.99) - 1]}


def run(kind: str, conc: str, duration: str, size: str, latency_ms: float, persist_ops: int) -> dict:
    wd = harness.new_dir(f"exp-{kind}-")
    backend = harness.Backend(wd, latency_ms=latency_ms)
    floor = fdatasync_floor_ms(wd)
    fs = harness.Reservoir(wd, durability="fsync", mounts=backend.mount("/bench", "bench/", persist_ops), name="fsync")
    nf = harness.Reservoir(wd, durability="none", mounts=backend.mount("/bench", "bench/", persist_ops), name="nofsync")
    ops = "put" if kind == "put" else "raw,get"
    common = [ops, "--obj-size", size, "--concurrency", conc, "--duration", duration, "--warmup", "1s",
              "--objects", "200", "--verify"]
    try:
        a = harness.bench([*common, "--endpoint", fs.url, *harness.reservoir_creds(),
                           "--compare", backend.proxy_url, "--compare-access-key", "moto",
                           "--compare-secret-key", "moto"], report.OUT / f"exp_{kind}_latency_fsync_vs_direct.bench.json")
        b = harness.bench([*common, "--endpoint", nf.url, *harness.reservoir_creds()],
                          report.OUT / f"exp_{kind}_latency_nofsync.bench.json")
        rss = max(fs.vmhwm_mb(), nf.vmhwm_mb())
    finally:
        harness.stop_all()
        shutil.rmtree(wd, ignore_errors=True)
    return {"fsync_vs_direct": a, "nofsync": b, "rss_mb": rss, "fdatasync_ms": floor}


def summarize(kind: str, raw: dict, conc: list[int], size: str) -> dict:
    a, b = raw["fsync_vs_direct"], raw["nofsync"]
    cmd = report.command_line()
    rows, goals = [], []
    series = {}
    if kind == "put":
        for c in conc:
            d, f, n = report.step(a, "B", "put", c), report.step(a, "A", "put", c), report.step(b, "A", "put", c)
            ratio = d["latency_ms"]["p50"] / f["latency_ms"]["p50"]
            rows.append([c, d["latency_ms"]["p50"], d["latency_ms"]["p99"], d["ops_per_s"],
                         f["latency_ms"]["p50"], f["latency_ms"]["p99"], f["ops_per_s"],
                         n["latency_ms"]["p50"], n["latency_ms"]["p99"], n["ops_per_s"], f"{ratio:.0f}x",
                         d["errors"] + f["errors"] + n["errors"]])
            for name, s in (("direct p50", d), ("Reservoir fsync p50", f), ("Reservoir no-fsync p50", n)):
                series.setdefault(name, []).append((c, s["latency_ms"]["p50"]))
            series.setdefault("Reservoir fsync p99", []).append((c, f["latency_ms"]["p99"]))
        md = report.table(["conc", "direct p50 ms", "direct p99 ms", "direct PUT/s", "fsync p50 ms", "fsync p99 ms",
                           "fsync PUT/s", "no-fsync p50 ms", "no-fsync p99 ms", "no-fsync PUT/s",
                           "direct/fsync p50", "errors"], rows)
        fl = raw.get("fdatasync_ms")
        if fl:
            md += (f"\n\nThis disk's floor for a durable write, measured in the same run (pwrite 10 KiB into a "
                   f"preallocated file + fdatasync, 400 times, on the cache's disk): p50 {fl['p50']:.3f} ms, p99 {fl['p99']:.3f} ms.")
        f1 = report.step(a, "A", "put", conc[0])["latency_ms"]["p50"]
        goals.append(report.goal("PUT 10 KiB write-back (fsync) p50 < 0.5 ms at c=1", f"{f1:.3f} ms", f1 < 0.5, cmd))
        ratios = [(c, report.step(a, "B", "put", c)["latency_ms"]["p50"] / report.step(a, "A", "put", c)["latency_ms"]["p50"])
                  for c in conc]
        worst = min(ratios, key=lambda x: x[1])
        goals.append(report.goal("PUT p50 >= 60x lower than the 30 ms backend at every concurrency",
                                 f"lowest {worst[1]:.1f}x (c={worst[0]}); " +
                                 ", ".join(f"c={c}: {r:.0f}x" for c, r in ratios), worst[1] >= 60, cmd))
        if 256 in conc:
            p99 = report.step(a, "A", "put", 256)["latency_ms"]["p99"]
            goals.append(report.goal("PUT p99 at c=256 < 20 ms (fsync)", f"{p99:.1f} ms", p99 < 20, cmd))
        title = f"PUT {size} latency vs concurrency"
    else:
        for c in conc:
            d, f, n = report.step(a, "B", "raw", c), report.step(a, "A", "raw", c), report.step(b, "A", "raw", c)
            dg, fg = report.step(a, "B", "get", c), report.step(a, "A", "get", c)
            rows.append([c, d["by_op"]["get"]["latency_ms"]["p50"], f["by_op"]["get"]["latency_ms"]["p50"],
                         f["by_op"]["get"]["latency_ms"]["p99"], n["by_op"]["get"]["latency_ms"]["p50"],
                         d["latency_ms"]["p50"], f["latency_ms"]["p50"],
                         dg["latency_ms"]["p50"], fg["latency_ms"]["p50"], fg["latency_ms"]["p99"], fg["ops_per_s"],
                         sum(s["by_op"]["get"]["verify_failures"] for s in (d, f, n)),
                         sum(s["errors"] for s in (d, f, n, dg, fg))])
            series.setdefault("direct GET after PUT p50", []).append((c, d["by_op"]["get"]["latency_ms"]["p50"]))
            series.setdefault("Reservoir GET after PUT p50", []).append((c, f["by_op"]["get"]["latency_ms"]["p50"]))
            series.setdefault("Reservoir GET hit p50", []).append((c, fg["latency_ms"]["p50"]))
            series.setdefault("Reservoir PUT+GET pair p50", []).append((c, f["latency_ms"]["p50"]))
        md = report.table(["conc", "direct GET-after-PUT p50 ms", "fsync GET-after-PUT p50 ms",
                           "fsync GET-after-PUT p99 ms", "no-fsync GET-after-PUT p50 ms", "direct PUT+GET p50 ms",
                           "fsync PUT+GET p50 ms", "direct GET p50 ms", "GET hit p50 ms", "GET hit p99 ms",
                           "GET hit/s", "verify failures", "errors"], rows)
        g1 = report.step(a, "A", "get", conc[0])["latency_ms"]["p50"]
        r1 = report.step(a, "A", "raw", conc[0])["by_op"]["get"]["latency_ms"]["p50"]
        goals.append(report.goal("GET hit p50 < 0.2 ms at c=1", f"{g1:.3f} ms", g1 < 0.2, cmd))
        goals.append(report.goal("read-after-write GET p50 < 0.2 ms at c=1", f"{r1:.3f} ms", r1 < 0.2, cmd))
        title = f"Read-after-write {size}: GET latency vs concurrency"
    goals.append(report.goal("server RSS < 500 MB (VmHWM)", f"{raw['rss_mb']:.0f} MB", raw["rss_mb"] < 500, cmd))
    png = report.PLOTS / f"{kind}_latency.png"
    report.plot(png, title, "concurrency", "latency (ms)", series)
    return {"markdown": md, "goals": goals, "plot": str(png.relative_to(report.ROOT)), "command": cmd}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["put", "raw"])
    ap.add_argument("--concurrency", default="1,4,16,64,256")
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--size", default="10KiB")
    ap.add_argument("--latency-ms", type=float, default=30)
    ap.add_argument("--persist-ops", type=int, default=100, help="Reservoir's drain rate to the backend (ops/s)")
    a = ap.parse_args()
    raw = run(a.kind, a.concurrency, a.duration, a.size, a.latency_ms, a.persist_ops)
    res = summarize(a.kind, raw, [int(c) for c in a.concurrency.split(",")], a.size)
    res["raw"] = raw
    res["title"] = "PUT latency vs concurrency" if a.kind == "put" else "Read-after-write latency"
    return report.finish(f"exp_{a.kind}_latency", res)


if __name__ == "__main__":
    sys.exit(main())
