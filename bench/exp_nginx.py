#!/usr/bin/env python3
"""Experiment 6, the physical-limit reference: Debian's nginx on 127.0.0.1
serving the same 10 KiB objects as static files (GET) and accepting them by
WebDAV PUT (no fsync), driven by the same client (`reservoir bench --anonymous`)
with the same concurrency, interleaved with Reservoir (write-back, durability
fsync, draining to a local under store at 100 objects/s) in one run.

The GET steps (every concurrency) run first, on two servers at rest, then the
PUT steps. With `--ops put,get` the GET steps run right after about 30 s of
PUTs (over 1 GB), while both servers still write back what those wrote:
Reservoir its index's flushes and compactions and the drain, nginx the
kernel's writeback of its files.

    python3 bench/exp_nginx.py [--concurrency 1,4,16,64,256] [--duration 5s] [--ops get,put|put,get]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import report  # noqa: E402


def run(conc: str, duration: str, size: str, ops: str = "get,put") -> dict:
    wd = harness.new_dir("exp-nginx-")
    mount = f"""[[mount]]
path = "/bench"
ufs = "file://{wd}/ufs-bench"
persist = {{ concurrency = 16, max_ops_per_sec = 100 }}
"""
    rsv = harness.Reservoir(wd, durability="fsync", mounts=mount)
    ngx = harness.Nginx(wd)
    try:
        doc = harness.bench([ops, "--obj-size", size, "--concurrency", conc, "--duration", duration,
                             "--warmup", "1s", "--objects", "1000", "--verify",
                             "--endpoint", rsv.url, *harness.reservoir_creds(),
                             "--compare", ngx.url, "--compare-anonymous"], report.OUT / "exp_nginx.bench.json")
        rss = rsv.vmhwm_mb()
    finally:
        harness.stop_all()
        shutil.rmtree(wd, ignore_errors=True)
    return {"doc": doc, "rss_mb": rss}


def summarize(raw: dict, conc: list[int], size: str) -> dict:
    doc = raw["doc"]
    cmd = report.command_line()
    rows, series = [], {}
    for c in conc:
        rp, npu = report.step(doc, "A", "put", c), report.step(doc, "B", "put", c)
        rg, ng = report.step(doc, "A", "get", c), report.step(doc, "B", "get", c)
        rows.append([c, rp["ops_per_s"], npu["ops_per_s"], f"{rp['ops_per_s'] / npu['ops_per_s']:.2f}",
                     rp["latency_ms"]["p50"], npu["latency_ms"]["p50"],
                     rg["ops_per_s"], ng["ops_per_s"], f"{rg['ops_per_s'] / ng['ops_per_s']:.2f}",
                     rg["latency_ms"]["p50"], ng["latency_ms"]["p50"],
                     sum(s["errors"] for s in (rp, npu, rg, ng))])
        series.setdefault("Reservoir PUT/s", []).append((c, rp["ops_per_s"]))
        series.setdefault("nginx WebDAV PUT/s", []).append((c, npu["ops_per_s"]))
        series.setdefault("Reservoir GET/s", []).append((c, rg["ops_per_s"]))
        series.setdefault("nginx static GET/s", []).append((c, ng["ops_per_s"]))
    md = report.table(["conc", "Reservoir PUT/s", "nginx PUT/s", "PUT ratio", "Reservoir PUT p50 ms",
                       "nginx PUT p50 ms", "Reservoir GET/s", "nginx GET/s", "GET ratio",
                       "Reservoir GET p50 ms", "nginx GET p50 ms", "errors"], rows)
    goals = []
    if 64 in conc:
        p = report.step(doc, "A", "put", 64)["ops_per_s"] / report.step(doc, "B", "put", 64)["ops_per_s"]
        g = report.step(doc, "A", "get", 64)["ops_per_s"] / report.step(doc, "B", "get", 64)["ops_per_s"]
        goals.append(report.goal("c=64 PUT >= 50% of nginx WebDAV PUT rate", f"{p * 100:.0f}%", p >= 0.5, cmd))
        goals.append(report.goal("c=64 GET >= 60% of nginx static GET rate", f"{g * 100:.0f}%", g >= 0.6, cmd))
    goals.append(report.goal("server RSS < 500 MB (VmHWM)", f"{raw['rss_mb']:.0f} MB", raw["rss_mb"] < 500, cmd))
    png = report.PLOTS / "nginx_reference.png"
    report.plot(png, f"{size} objects: Reservoir vs nginx (same client, same run)", "concurrency",
                "operations/s", series, logy=False)
    return {"markdown": md, "goals": goals, "plot": str(png.relative_to(report.ROOT)), "command": cmd}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", default="1,4,16,64,256")
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--size", default="10KiB")
    ap.add_argument("--ops", default="get,put", choices=["get,put", "put,get"],
                    help="order of the steps (every concurrency of the first, then of the second)")
    a = ap.parse_args()
    raw = run(a.concurrency, a.duration, a.size, a.ops)
    res = summarize(raw, [int(c) for c in a.concurrency.split(",")], a.size)
    res["raw"] = raw
    res["title"] = "Physical-limit reference: nginx"
    return report.finish("exp_nginx", res)


if __name__ == "__main__":
    sys.exit(main())
