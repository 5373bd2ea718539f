#!/usr/bin/env bash
# Start-up time on a full cache, before/after a change: fills one data
# directory with 10 KiB write-back objects (held back from the drain, so all
# of them stay dirty) for FILL seconds with NEW_BIN, then starts OLD_BIN and
# NEW_BIN on it alternately, ROUNDS times each, and prints the seconds until
# /health answers. With DROP_CACHES=1 (root) the page cache is dropped before
# each start, as after a reboot.
#
#   bash bench/startup.sh OLD_BIN NEW_BIN ROUNDS FILL_SECONDS
#   DROP_CACHES=1 bash bench/startup.sh /tmp/reservoir.before build/release/reservoir 2 40
set -euo pipefail
[ $# -eq 4 ] || { sed -n 2,10p "$0"; exit 2; }
old=$(realpath "$1"); new=$(realpath "$2"); rounds=$3; fill=$4
root="$(cd "$(dirname "$0")/.." && pwd)"
client="$root/build/release/reservoir"
work=$(mktemp -d "${TMPDIR:-/tmp}/reservoir-startup-XXXXXX")
pid=
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

. "$root/bench/server.sh"
port=$(free_port); admin=$(free_port)
write_config "$work/reservoir.toml" "$port" "$admin" "$work" '{ delay = "1h" }'

start() {  # binary -> starts a server, sets $pid and $took (seconds until /health answers)
  [ "${DROP_CACHES:-0}" = 1 ] && { sync; echo 3 > /proc/sys/vm/drop_caches; }
  local t0; t0=$(date +%s.%N)
  "$1" serve --config "$work/reservoir.toml" >> "$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 3000); do
    healthy "$admin" && { took=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')"); return 0; }
    sleep 0.02
  done
  echo "server did not start:"; cat "$work/log"; exit 1
}

start "$new"
"$client" bench put --endpoint "http://127.0.0.1:$port" --access-key bench --secret-key bench-secret \
  --obj-size 10KiB --concurrency 32 --duration "${fill}s" --warmup 0s --no-progress 2>&1 | grep -E '^\| A ' | tail -1
kill "$pid"; wait "$pid" 2>/dev/null || true
echo "data directory: $(du -sh "$work/data" | cut -f1)"
for r in $(seq "$rounds"); do
  for which in old new; do
    bin=$old; [ "$which" = new ] && bin=$new
    start "$bin"
    printf '%-4s round %s: %s s to /health\n' "$which" "$r" "$took"
    sleep 2  # let a background sweep run
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
