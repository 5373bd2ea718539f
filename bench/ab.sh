#!/usr/bin/env bash
# Before/after of a change, side by side: runs the same `reservoir bench` step
# against two server binaries, alternately, ROUNDS times, each run on a fresh
# single-node server (durability fsync, "/" on a file:// under store) that is
# stopped before the next one starts. The client is this checkout's binary.
#
#   bash bench/ab.sh OLD_BIN NEW_BIN ROUNDS -- BENCH_ARGS...
#   bash bench/ab.sh /tmp/reservoir.before build/release/reservoir 3 -- put --obj-size 10KiB -c 64 -d 5s
#
# Environment: DURABILITY (fsync | none), PERSIST (the mount's persist table,
# default '{ concurrency = 16, max_ops_per_sec = 100 }'; '{ delay = "1h" }'
# keeps the drain out of the measurement).
set -euo pipefail
[ $# -ge 4 ] && [ "$4" = "--" ] || { sed -n 2,12p "$0"; exit 2; }
old=$(realpath "$1"); new=$(realpath "$2"); rounds=$3; shift 4
root="$(cd "$(dirname "$0")/.." && pwd)"
client="$root/build/release/reservoir"
work=$(mktemp -d "${TMPDIR:-/tmp}/reservoir-ab-XXXXXX")
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=

. "$root/bench/server.sh"

start() {  # binary -> starts a server, sets $pid and $port
  rm -rf "$work/srv"; mkdir -p "$work/srv"
  port=$(free_port); local admin; admin=$(free_port)
  local persist='{ concurrency = 16, max_ops_per_sec = 100 }'
  [ -n "${PERSIST:-}" ] && persist=$PERSIST
  write_config "$work/srv/reservoir.toml" "$port" "$admin" "$work/srv" "$persist"
  "$1" serve --config "$work/srv/reservoir.toml" > "$work/srv/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    healthy "$admin" && return 0
    sleep 0.1
  done
  echo "server did not start:"; cat "$work/srv/log"; exit 1
}

for r in $(seq "$rounds"); do
  for which in old new; do
    bin=$old; [ "$which" = new ] && bin=$new
    start "$bin"
    printf '%-4s round %s: ' "$which" "$r"
    "$client" bench "$@" --endpoint "http://127.0.0.1:$port" --access-key bench --secret-key bench-secret \
      --no-progress 2>&1 | grep -E '^\| A ' | tail -1
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
echo "columns: endpoint | op | conc | ops | ops/s | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors"
