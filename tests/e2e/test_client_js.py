"""The AWS SDK for JavaScript v3 (@aws-sdk/client-s3 and @aws-sdk/lib-storage, exact
versions in js/package.json) against the server: js/s3_client_check.mjs does PutObject
with ContentType and Metadata, a streamed GetObject, HeadObject, ListObjectsV2 paging
(MaxKeys 10 over 25 keys), a 12 MiB lib-storage multipart Upload read back byte for byte,
NoSuchKey for a missing key and 403 SignatureDoesNotMatch for a wrong secret.

At module setup `npm ci` installs js/node_modules (gitignored) if it is missing; the
module is skipped, with the reason, when node or npm is missing or npm fails (no network).
Python only launches node here."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ACCESS_KEY, SECRET_KEY

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "s3_client_check.mjs"
NODE = shutil.which("node")
NPM = shutil.which("npm")


def _skip(reason: str):
    print(f"test_client_js: skipping: {reason}", file=sys.stderr)
    pytest.skip(reason)


def _node_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true")
    return env


@pytest.fixture(scope="module", autouse=True)
def node_modules() -> None:
    """Module setup: `npm ci` if js/node_modules is missing; skip the module if impossible.
    (A fixture, not an import-time skip, so that a lone run of this file exits 0 on skip.)"""
    if NODE is None or NPM is None:
        _skip(f"node and npm are needed (node: {NODE}, npm: {NPM}); apt-get install nodejs npm")
    if (JS_DIR / "node_modules").is_dir():
        return
    argv = [NPM, "ci", "--no-audit", "--no-fund", "--prefix", str(JS_DIR)]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL, cwd=JS_DIR)
    except (OSError, subprocess.TimeoutExpired) as e:
        _skip(f"{' '.join(argv)} failed: {e}")
        return
    if r.returncode != 0:
        shutil.rmtree(JS_DIR / "node_modules", ignore_errors=True)  # no half install next time
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
        _skip(f"{' '.join(argv)} failed (exit {r.returncode}; no network?):\n{tail}")


def test_aws_sdk_js_v3(node_modules, server, bucket):
    argv = [NODE, str(SCRIPT), server.endpoint, bucket, ACCESS_KEY, SECRET_KEY]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=_node_env(),
                       stdin=subprocess.DEVNULL, cwd=JS_DIR)
    print(r.stdout)
    if r.returncode != 0:
        log = server.log_tail(40)
        pytest.fail(f"{' '.join(map(str, argv))} -> exit {r.returncode}\nstdout:\n{r.stdout}\n"
                    f"stderr:\n{r.stderr}\nserver log tail:\n{log}", pytrace=False)
