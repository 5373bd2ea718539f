#!/usr/bin/env python3
"""Experiment 4: large objects (1 GiB and 64 MiB) PUT and GET through Reservoir
(write-back, durability fsync, drain deferred so that the acknowledgement path
is what is measured), against the machine's own limits measured in the same run:
dd with conv=fsync to the cache's disk, dd reading the file back from the page
cache, a loopback TCP copy, and nginx (WebDAV PUT, static GET with sendfile)
driven by the same client.

    python3 bench/exp_large.py [--sizes 1GiB,64MiB]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import report  # noqa: E402

GiB = 1 << 30


def dd_rates(d: Path, nbytes: int) -> dict:
    f = d / "dd.bin"
    t = time.perf_counter()
    subprocess.run(["dd", "if=/dev/urandom", f"of={d}/src.bin", "bs=4M", f"count={nbytes >> 22}"],
                   check=True, capture_output=True)
    # write: from a page-cached random file, fsync before dd exits
    t = time.perf_counter()
    subprocess.run(["dd", f"if={d}/src.bin", f"of={f}", "bs=4M", "conv=fsync"], check=True, capture_output=True)
    write = nbytes / (time.perf_counter() - t) / 1e6
    subprocess.run(["dd", f"if={f}", "of=/dev/null", "bs=4M"], check=True, capture_output=True)  # warm
    t = time.perf_counter()
    subprocess.run(["dd", f"if={f}", "of=/dev/null", "bs=4M"], check=True, capture_output=True)
    read = nbytes / (time.perf_counter() - t) / 1e6
    f.unlink()
    (d / "src.bin").unlink()
    return {"dd_fsync_write_mb_s": write, "page_cache_read_mb_s": read}


def loopback_mb_s(nbytes: int) -> float:
    """One TCP connection on 127.0.0.1, 4 MiB sends and recv_into (the copy floor)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = [0]

    def sink():
        c, _ = srv.accept()
        buf = bytearray(4 << 20)
        while True:
            n = c.recv_into(buf)
            if not n:
                break
            got[0] += n
        c.close()

    th = threading.Thread(target=sink)
    th.start()
    cli = socket.create_connection(srv.getsockname())
    chunk = bytes(4 << 20)
    t = time.perf_counter()
    for _ in range(nbytes // len(chunk)):
        cli.sendall(chunk)
    cli.close()
    th.join()
    srv.close()
    return got[0] / (time.perf_counter() - t) / 1e6


def run(sizes: list[str]) -> dict:
    wd = harness.new_dir("exp-large-")
    mount = f"""[[mount]]
path = "/bench"
ufs = "file://{wd}/ufs-bench"
persist = {{ concurrency = 4, delay = "1h" }}
"""
    out = {"machine": {}, "sizes": {}}
    try:
        out["machine"] = dd_rates(wd, GiB)
        out["machine"]["loopback_mb_s"] = loopback_mb_s(4 * GiB)
        rsv = harness.Reservoir(wd, durability="fsync", mounts=mount)
        ngx = harness.Nginx(wd)
        for size in sizes:
            n = 3 if size.lower().startswith("1g") else 10
            out["sizes"][size] = harness.bench(
                ["put,get", "--obj-size", size, "--concurrency", "1", "--ops", str(n), "--objects", "1",
                 "--verify", "--endpoint", rsv.url, *harness.reservoir_creds(),
                 "--compare", ngx.url, "--compare-anonymous"], wd / f"large-{size}.json")
        out["rss_mb"] = rsv.vmhwm_mb()
        # The disk of this machine is noisy: dd again after the runs, and use the mean.
        after = dd_rates(wd, GiB)
        out["machine"]["dd_runs_mb_s"] = [out["machine"]["dd_fsync_write_mb_s"], after["dd_fsync_write_mb_s"]]
        for k in ("dd_fsync_write_mb_s", "page_cache_read_mb_s"):
            out["machine"][k] = (out["machine"][k] + after[k]) / 2
    finally:
        harness.stop_all()
        shutil.rmtree(wd, ignore_errors=True)
    return out


def summarize(raw: dict) -> dict:
    cmd = report.command_line()
    m = raw["machine"]
    rows = []
    goals = []
    for size, doc in raw["sizes"].items():
        rp, np_ = report.step(doc, "A", "put", 1), report.step(doc, "B", "put", 1)
        rg, ng = report.step(doc, "A", "get", 1), report.step(doc, "B", "get", 1)
        rows.append([size, rp["mb_per_s"], np_["mb_per_s"], m["dd_fsync_write_mb_s"],
                     f"{rp['mb_per_s'] / m['dd_fsync_write_mb_s'] * 100:.0f}%",
                     rg["mb_per_s"], ng["mb_per_s"], m["page_cache_read_mb_s"], m["loopback_mb_s"],
                     rp["latency_ms"]["p50"], rg["latency_ms"]["p50"],
                     sum(s["errors"] + s["verify_failures"] for s in (rp, np_, rg, ng))])
        if size.lower().startswith("1g"):
            r = rp["mb_per_s"] / m["dd_fsync_write_mb_s"]
            goals.append(report.goal("1 GiB PUT >= 70% of dd conv=fsync rate",
                                     f"{rp['mb_per_s']:.0f} MB/s = {r * 100:.0f}% of {m['dd_fsync_write_mb_s']:.0f} MB/s",
                                     r >= 0.7, cmd))
            goals.append(report.goal("1 GiB GET (cache hit) >= 1 GB/s", f"{rg['mb_per_s']:.0f} MB/s",
                                     rg["mb_per_s"] >= 1000, cmd))
    md = f"dd conv=fsync runs (before, after): {', '.join(f'{v:.0f}' for v in m.get('dd_runs_mb_s', []))} MB/s.\n\n"
    md += report.table(["size", "Reservoir PUT MB/s", "nginx PUT MB/s", "dd fsync write MB/s", "PUT vs dd",
                       "Reservoir GET MB/s", "nginx GET MB/s", "page-cache read MB/s", "loopback copy MB/s",
                       "PUT p50 ms", "GET p50 ms", "errors"], rows)
    goals.append(report.goal("server RSS < 500 MB (VmHWM)", f"{raw['rss_mb']:.0f} MB", raw["rss_mb"] < 500, cmd))
    series = {}
    for size, doc in raw["sizes"].items():
        mib = (1024 if size.lower().startswith("1g") else int("".join(ch for ch in size if ch.isdigit())))
        for name, ep, op in (("Reservoir PUT", "A", "put"), ("nginx PUT", "B", "put"),
                             ("Reservoir GET", "A", "get"), ("nginx GET", "B", "get")):
            series.setdefault(name, []).append((mib, report.step(doc, ep, op, 1)["mb_per_s"]))
    series["dd conv=fsync write"] = [(x, m["dd_fsync_write_mb_s"]) for x, _ in series["Reservoir PUT"]]
    for pts in series.values():
        pts.sort()
    png = report.PLOTS / "large_objects.png"
    report.plot(png, "Large objects at concurrency 1 (MB/s)", "object size (MiB)", "MB/s", series,
                logx=True, logy=True)
    return {"markdown": md, "goals": goals, "command": cmd, "plot": str(png.relative_to(report.ROOT))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1GiB,64MiB")
    a = ap.parse_args()
    raw = run(a.sizes.split(","))
    res = summarize(raw)
    res["raw"] = raw
    res["title"] = "Large objects"
    return report.finish("exp_large", res)


if __name__ == "__main__":
    sys.exit(main())
