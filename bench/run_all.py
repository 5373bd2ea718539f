#!/usr/bin/env python3
"""`make bench`: runs every experiment (each is also one command on its own) and
regenerates BENCHMARKS.md from their results (build/bench/*.json): tables, plot
links, and for each goal the goal, the measured value, pass/miss and the command.

    python3 bench/run_all.py [--only put,raw,nginx,large,pipeline,burst,readcache] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

ROOT = report.ROOT
BENCH = ROOT / "BENCHMARKS.md"

# name -> (command, result file, section title)
EXPERIMENTS = {
    "put": (["bench/exp_latency.py", "put"], "exp_put_latency", "1. PUT latency vs concurrency (10 KiB)"),
    "raw": (["bench/exp_latency.py", "raw"], "exp_raw_latency", "2. Read-after-write latency (10 KiB)"),
    "large": (["bench/exp_large.py"], "exp_large", "4. Large objects (1 GiB, 64 MiB)"),
    "pipeline": (["bench/exp_pipeline.py"], "exp_pipeline", "5. A three-stage pipeline"),
    "nginx": (["bench/exp_nginx.py"], "exp_nginx", "6. Physical-limit reference: nginx on the same machine"),
    "readcache": (["bench/exp_read_cache.py"], "exp_read_cache", "7. Read cache: hit, cold miss and the backend; ranged reads"),
}
BURST_CMD = ["bench/burst.py", "--puts", "2000", "--concurrency", "64", "--json", "build/bench/burst.json",
             "--plot", "bench/plots/burst.png"]
BURST_C1_CMD = ["bench/burst.py", "--puts", "300", "--concurrency", "1", "--json", "build/bench/burst-c1.json"]
BURST_NOTE = """Reservoir mounts the backend bucket with `persist = { max_ops_per_sec = 50,
concurrency = 16 }` and `durability = "fsync"`; each PUT through Reservoir is
followed by a GET of the same key on the same connection, compared byte for byte.
After the barrier (`POST /admin/v1/sync?prefix=burst/`) every object is checked
in moto (bytes and `x-amz-meta-i`). The drain is bounded by the backend's
50 PUT/s, and Reservoir never exceeds it (its limiter spaces uploads 1/rate
apart). At concurrency 64 the Reservoir latency is throughput-bound on 2 cores:
the client, Reservoir, the proxy and moto (draining in the background) share them."""

INTRO = """# Benchmarks

Every number here comes from one command, run on the project's 2-core, 24 GiB
Debian 12 machine, with the paths compared measured side by side in the same run.
These machines are noisy: compare the ratios, not the absolute values.
`make bench` runs every experiment below and regenerates this file
(`python3 bench/run_all.py`; `--only NAME` reruns one, `--report-only` rewrites
this file from the last results in `build/bench/`). Before/after numbers of a
change come from `bash bench/ab.sh OLD_BIN NEW_BIN ROUNDS -- BENCH_ARGS`, which
runs one `reservoir bench` step against the two server binaries alternately.

The backend is `moto_server` (a real S3 server) behind
`tests/tools/slow_s3_proxy.py`, which makes it behave like S3 over the internet:
lognormal latency with a 30 ms median (and, in the burst experiment, 503 SlowDown
above a PUT rate). Load comes from `reservoir bench` (`src/bench/`), a C++ load
generator on Asio coroutines with one kept-alive connection per concurrent
worker, SigV4-signed like an SDK (UNSIGNED-PAYLOAD) or anonymous for nginx,
every body read verified against what was written (`--verify`). The burst and
pipeline experiments use `bench/s3load.py`, a light asyncio client.
Server memory is the peak resident set (`VmHWM` in `/proc/PID/status`).

## The load generator: `reservoir bench`

```sh
# 10 KiB PUTs for 10 s at each concurrency, JSON for machines:
reservoir bench put --endpoint http://127.0.0.1:9000 --access-key reservoir --secret-key reservoir-secret \\
    --obj-size 10KiB --concurrency 1,4,16,64,256 --duration 10s --warmup 2s --json put.json
# read-after-write, bodies checked byte for byte; sizes uniform in a range:
reservoir bench raw --obj-size 4KiB-1MiB --verify
# the same steps on a second endpoint, interleaved, with ratios (here nginx WebDAV):
reservoir bench put,get --compare http://127.0.0.1:8080 --compare-anonymous
# a mix, multipart uploads, listings, deletes:
reservoir bench mixed --mix put=30,get=60,stat=10
reservoir bench multipart --obj-size 64MiB --part-size 8MiB --ops 20
```

Operations: `put`, `get` (of objects it prepares first), `raw` (GET right after
its own PUT, on the same connection), `stat` (HEAD), `list` (ListObjectsV2 of
1000 keys), `delete` (of an object it PUTs just before), `multipart`, `mixed`.
Each step reports operations/s, MB/s (10^6 bytes), latency p50/p90/p99/p99.9/max
(exact, from every sample), and errors by HTTP status and S3 code; a live
progress line goes to stderr on a terminal. Keys are `PREFIX/w<worker>/<n>` and
`PREFIX/obj/<i>` under a random `bench-XXXXXXXX/` prefix; nothing is deleted at
the end. Bodies are slices of one buffer of random bytes (incompressible).
One io_context thread per core (`--threads`), one kept-alive connection per
concurrent worker.
"""


def run_one(args: list[str]) -> str:
    env = dict(os.environ)
    print(f"== python3 {' '.join(args)}", file=sys.stderr, flush=True)
    p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        print(f"{args[0]} failed with {p.returncode}", file=sys.stderr)
    return p.stdout


def load(name: str) -> dict | None:
    p = report.OUT / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def kept_section(text: str, heading: str) -> str:
    """The section of the current BENCHMARKS.md that starts at `heading`, up to the next '## '."""
    i = text.find(heading)
    if i < 0:
        return ""
    j = text.find("\n## ", i + len(heading))
    return text[i:] if j < 0 else text[i:j + 1]


def write_report() -> None:
    old = BENCH.read_text() if BENCH.exists() else ""
    parts = [INTRO]
    goals = []
    sections = []
    for name, (cmd, result, title) in EXPERIMENTS.items():
        r = load(result)
        if not r:
            continue
        sec = [f"## {title}", "", "```sh", r["command"], "```", "", r["markdown"], ""]
        if r.get("plot"):
            sec += [f"![{title}]({r['plot']})", ""]
        for g in r["goals"]:
            goals.append((title.split(".")[0], g))
            sec.append(f"- {g['goal']}: **{g['measured']}** ({'pass' if g['pass'] else 'MISS'})")
        sections.append("\n".join(sec) + "\n")
    if goals:
        rows = [[f"{g['goal']}", g["measured"], "pass" if g["pass"] else "**miss**", f"`{g['command']}`"]
                for _, g in goals]
        parts.append("## Goals\n\nMeasured in the runs below (same run for every ratio).\n\n" +
                     report.table(["goal", "measured", "result", "command"], rows) + "\n")
    burst_md = (report.OUT / "burst.md")
    if burst_md.exists():
        sec = ("## 3. Burst absorption (write-back to a throttled S3)\n\n```sh\npython3 " + " ".join(BURST_CMD) +
               "\n```\n\n" + burst_md.read_text().strip() + "\n\n" + BURST_NOTE + "\n")
        c1 = report.OUT / "burst-c1.md"
        if c1.exists():
            sec += ("\nThe same at concurrency 1:\n\n```sh\npython3 " + " ".join(BURST_C1_CMD) + "\n```\n\n" +
                    c1.read_text().strip() + "\n")
    else:
        sec = kept_section(old, "## 3. Burst absorption") or kept_section(old, "## Burst absorption")
    # In the order of the experiments: 1, 2, the burst (3), then 4-6.
    parts += sections[:2] + [sec] + sections[2:]
    parts.append(kept_section(old, "## Profiles of the misses"))
    parts.append(kept_section(old, "## What changed the numbers"))
    BENCH.write_text("\n".join(p.rstrip() + "\n" for p in parts if p))
    print(f"wrote {BENCH}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="put,raw,nginx,large,pipeline,burst,readcache")
    ap.add_argument("--report-only", action="store_true")
    a = ap.parse_args()
    if not a.report_only:
        report.OUT.mkdir(parents=True, exist_ok=True)
        for name in a.only.split(","):
            if name == "burst":
                (report.OUT / "burst.md").write_text(run_one(BURST_CMD))
                (report.OUT / "burst-c1.md").write_text(run_one(BURST_C1_CMD))
            elif name in EXPERIMENTS:
                run_one(EXPERIMENTS[name][0])
            else:
                print(f"unknown experiment {name}", file=sys.stderr)
                return 2
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
