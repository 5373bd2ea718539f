#!/usr/bin/env bash
# Installs every Debian package Reservoir needs to build, run and test.
# Idempotent: packages already present are skipped quickly.
set -euo pipefail
PKGS=(
  build-essential clang-14 cmake ninja-build ccache pkg-config
  libboost1.74-dev libboost-context1.74-dev
  librocksdb-dev libssl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libcli11-dev libtomlplusplus-dev libpugixml-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-pytest python3-boto3 awscli curl s3cmd rclone s3fs
  nginx gnuplot-nox python3-fusepy
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
