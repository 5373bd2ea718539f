#!/usr/bin/env python3
"""Before/after of a change with the slow S3 backend behind the servers: like
bench/ab.sh, but each server writes back to moto_server behind the slow proxy
(30 ms median latency), so the drain to S3 runs during the measurement. Runs
one `reservoir bench` step against OLD and NEW alternately, ROUNDS times, each
on a fresh server (durability from DURABILITY, default fsync; drain rate from
PERSIST_OPS, default 100 objects/s), all against one backend.

    python3 bench/ab_s3.py OLD_BIN NEW_BIN ROUNDS BENCH_ARGS...
    PERSIST_OPS=2000 python3 bench/ab_s3.py /tmp/reservoir.before build/release/reservoir 3 \\
        put --bucket bench --obj-size 10KiB -c 16 -d 6s --warmup 1s
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def main() -> int:
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    old, new, rounds, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    client = harness.RESERVOIR_BIN  # this checkout's load generator drives both
    wd = harness.new_dir("ab-s3-")
    backend = harness.Backend(wd)
    mount = backend.mount("/bench", "bench/", int(os.environ.get("PERSIST_OPS", "100")))
    try:
        for r in range(1, rounds + 1):
            for name, binary in (("old", old), ("new", new)):
                harness.RESERVOIR_BIN = Path(binary).resolve()
                srv = harness.Reservoir(wd, durability=os.environ.get("DURABILITY", "fsync"), mounts=mount,
                                        name=f"{name}{r}")
                harness.RESERVOIR_BIN = client
                res = harness.bench([*args, "--endpoint", srv.url, *harness.reservoir_creds()],
                                    wd / f"{name}{r}.json")
                for s in res["steps"]:
                    lat = s["latency_ms"]
                    print(f"{name} round {r}: {s.get('op')} c={s.get('concurrency')} {s['ops_per_s']:.0f}/s "
                          f"p50 {lat['p50']:.3f} p90 {lat['p90']:.3f} p99 {lat['p99']:.3f} ms", flush=True)
                srv.stop()
    finally:
        harness.stop_all()
        shutil.rmtree(wd, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
