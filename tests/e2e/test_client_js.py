"""The AWS SDK for JavaScript v3 (@aws-sdk/client-s3 and @aws-sdk/lib-storage, exact
versions in js/package.json) against the server: js/s3_client_check.mjs does PutObject
with ContentType and Metadata, GetObject, HeadObject, ListObjectsV2 paging (MaxKeys 10
over 25 keys), a 12 MiB lib-storage multipart Upload streamed back (for await over the
Body) and compared by SHA-256,
NoSuchKey for a missing key and 403 SignatureDoesNotMatch for a wrong secret; once over
plain HTTP and once over HTTPS with the test CA in NODE_EXTRA_CA_CERTS (and a CA that did
not sign the server's certificate failing).

At module setup `npm ci` installs js/node_modules (gitignored) if it is missing; the
module is skipped, with the reason, when node or npm is missing or npm fails (no network).
Python only launches node here."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, delete_bucket_quietly, unique_bucket_name

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "s3_client_check.mjs"
NODE = shutil.which("node")
NPM = shutil.which("npm")


def _skip(reason: str):
    print(f"test_client_js: skipping: {reason}", file=sys.stderr)
    pytest.skip(reason)


def _node_env(ca=None) -> dict:
    """ca: the only extra CA node trusts (NODE_EXTRA_CA_CERTS); none without it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("NODE_EXTRA_CA_CERTS", "NODE_TLS_REJECT_UNAUTHORIZED")}
    if ca is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca)
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


@pytest.fixture
def https_bucket(https_server):
    admin = https_server.client()
    name = unique_bucket_name("js-tls")
    admin.create_bucket(Bucket=name)
    yield name
    delete_bucket_quietly(admin, name)


def test_aws_sdk_js_v3_https(node_modules, https_server, pki, https_bucket):
    argv = [NODE, str(SCRIPT), https_server.tls_endpoint, https_bucket, ACCESS_KEY, SECRET_KEY]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=_node_env(pki.ca),
                       stdin=subprocess.DEVNULL, cwd=JS_DIR)
    print(r.stdout)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} -> exit {r.returncode}\nstdout:\n{r.stdout}\n"
                    f"stderr:\n{r.stderr}\nserver log tail:\n{https_server.log_tail(40)}", pytrace=False)


_LIST_BUCKETS_JS = """
import { S3Client, ListBucketsCommand } from "@aws-sdk/client-s3";
const [endpoint, accessKeyId, secretAccessKey] = process.argv.slice(1);
const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, maxAttempts: 1,
                          credentials: { accessKeyId, secretAccessKey } });
try {
  const r = await s3.send(new ListBucketsCommand({}));
  console.log(`ok ${r.Buckets.length} buckets`);
} catch (err) {
  console.log(`error ${err.code || err.name}: ${err.message}`);
  process.exit(3);
}
"""


def test_aws_sdk_js_v3_https_untrusted_ca_fails(node_modules, https_server, pki):
    def run(ca):
        argv = [NODE, "--input-type=module", "-e", _LIST_BUCKETS_JS, https_server.tls_endpoint,
                ACCESS_KEY, SECRET_KEY]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_node_env(ca),
                              stdin=subprocess.DEVNULL, cwd=JS_DIR)
    good = run(pki.ca)
    assert good.returncode == 0 and good.stdout.startswith("ok "), (good.stdout, good.stderr)
    bad = run(pki.other_ca)
    assert bad.returncode == 3, (bad.stdout, bad.stderr)
    assert "certificate" in bad.stdout.lower() or "UNABLE_TO_VERIFY" in bad.stdout, bad.stdout
