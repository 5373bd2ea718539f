#!/usr/bin/env bash
# End-to-end tests: runs the whole pytest suite twice, once with the machine
# image's python (boto3 1.43, awscli v1) and once with Debian's python3
# (boto3 1.26, pytest 7.2). Exits non-zero if either run fails.
#
#   bash tests/e2e/run.sh [pytest args...]
#
# Environment:
#   RESERVOIR_BIN          server binary (default build/release/reservoir)
#   RESERVOIR_E2E_TARGET   reservoir (default) | moto  (check the S3 expectations on moto_server)
#   E2E_PYTHONS            which runs to do: "image debian" (default), "image" or "debian"
#   E2E_TIMEOUT            seconds allowed per run (default 1200)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
export RESERVOIR_BIN="${RESERVOIR_BIN:-$root/build/release/reservoir}"
export RESERVOIR_E2E_TARGET="${RESERVOIR_E2E_TARGET:-reservoir}"
# never let a proxy setting send test traffic elsewhere: everything is on 127.0.0.1
export NO_PROXY="127.0.0.1,localhost,.localhost" no_proxy="127.0.0.1,localhost,.localhost"
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy
# isolate from any user AWS configuration
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN

timeout_s="${E2E_TIMEOUT:-1200}"
want="${E2E_PYTHONS:-image debian}"
debian_py=/usr/bin/python3
dist=/usr/lib/python3/dist-packages
shim="$root/build/pytest-shim"

pytest_args=(-p no:cacheprovider -q -rfEs --rootdir "$here" -c "$here/pytest.ini")
# the whole suite unless the caller named test files or node ids
has_path=0
for a in "$@"; do
  case "$a" in -*) ;; *) [ -e "${a%%::*}" ] && has_path=1 ;; esac
done
[ "$has_path" -eq 1 ] || pytest_args+=("$here")
pytest_args+=("$@")

# The image python: python3 from PATH or pyenv, if it is not Debian's and has boto3.
image_py=""
for cand in "$(command -v python3 2>/dev/null || true)" "${PYENV_ROOT:-$HOME/.pyenv}/shims/python3" \
            /root/.pyenv/shims/python3; do
  [ -n "$cand" ] && [ -x "$cand" ] || continue
  [ "$(readlink -f "$cand")" != "$(readlink -f "$debian_py")" ] || continue
  if "$cand" -c 'import boto3' 2>/dev/null; then image_py="$cand"; break; fi
done
# the CLI and moto_server of the image live next to it
if [ -n "$image_py" ]; then
  export PATH="$PATH:$(dirname "$image_py")"
fi

if [ "$RESERVOIR_E2E_TARGET" = reservoir ] && [ ! -x "$RESERVOIR_BIN" ]; then
  echo "run.sh: reservoir binary $RESERVOIR_BIN is missing; build it first (make build)" >&2
  exit 2
fi

make_shim() {
  rm -rf "$shim"
  mkdir -p "$shim"
  local m
  for m in pytest _pytest pluggy iniconfig py.py; do
    if [ ! -e "$dist/$m" ]; then
      echo "run.sh: $dist/$m missing (apt-get install python3-pytest)" >&2
      return 1
    fi
    ln -s "$dist/$m" "$shim/$m"
  done
  # pytest imports `packaging` lazily; lend Debian's only if the image python lacks it
  if ! "$image_py" -c 'import packaging' 2>/dev/null && [ -e "$dist/packaging" ]; then
    ln -s "$dist/packaging" "$shim/packaging"
  fi
}

status=0
ran=0
run_suite() {  # label python [PYTHONPATH]
  local label="$1" py="$2" pp="${3:-}"
  echo "=== e2e [$label]: $py, target=$RESERVOIR_E2E_TARGET ==="
  local rc
  if [ -n "$pp" ]; then
    PYTHONPATH="$pp${PYTHONPATH:+:$PYTHONPATH}" timeout --kill-after=30 "$timeout_s" \
      "$py" -m pytest "${pytest_args[@]}"
  else
    timeout --kill-after=30 "$timeout_s" "$py" -m pytest "${pytest_args[@]}"
  fi
  rc=$?
  ran=$((ran + 1))
  if [ "$rc" -ne 0 ]; then
    echo "=== e2e [$label] FAILED (exit $rc) ==="
    status=1
  else
    echo "=== e2e [$label] passed ==="
  fi
}

if [[ " $want " == *" image "* ]]; then
  if [ -n "$image_py" ]; then
    if make_shim; then
      run_suite "image python $("$image_py" -c 'import boto3; print("boto3", boto3.__version__)')" "$image_py" "$shim"
    else
      status=1
    fi
  else
    echo "run.sh: WARNING: the image python (python3 with boto3, not $debian_py) is missing; running only Debian's python" >&2
  fi
fi

if [[ " $want " == *" debian "* ]]; then
  if [ -x "$debian_py" ] && "$debian_py" -c 'import pytest, boto3' 2>/dev/null; then
    run_suite "debian python $("$debian_py" -c 'import boto3; print("boto3", boto3.__version__)')" "$debian_py"
  else
    echo "run.sh: ERROR: $debian_py with pytest and boto3 is missing (apt-get install python3-pytest python3-boto3)" >&2
    status=1
  fi
fi

if [ "$ran" -eq 0 ]; then
  echo "run.sh: no e2e run was possible" >&2
  exit 1
fi
exit "$status"
