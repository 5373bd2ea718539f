"""rclone (Debian's package) against the server: copy a directory up, lsf, cat, check
(equal and after a local change), sync with deletes, and a 20 MiB multipart upload; over
HTTPS with the test CA (--ca-cert): copy, lsf, cat, check, sync both ways, a multipart
upload, content type and mtime metadata; a CA that did not sign the server's certificate
failing; 403 for a wrong secret key.

rclone is configured through a temporary --config file with one remote of type s3,
provider Other, plain-HTTP endpoint on 127.0.0.1, path-style, static credentials."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import (ACCESS_KEY, REGION, SECRET_KEY, MiB, delete_bucket_quietly, expect_error,
                      md5_hex, rand_bytes, run_cli, unique_bucket_name)

RCLONE = shutil.which("rclone") or ("/usr/bin/rclone" if os.path.exists("/usr/bin/rclone") else None)
if RCLONE is None:
    pytest.skip("rclone is not installed (apt-get install rclone)", allow_module_level=True)

REMOTE = "rsv"


def _clean_env(home: Path) -> dict:
    # no AWS_* at all: rclone 1.60's aws-sdk-go fails every command with
    # "LoadCustomCABundleError ... unsupported transport" when AWS_CA_BUNDLE is set
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RCLONE_", "AWS_")) and k not in ("PYTHONPATH", "PYTHONHOME")}
    for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"),
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return env


class Rclone:
    def __init__(self, endpoint: str, root: Path, *, ca: Path | None = None,
                 secret_key: str = SECRET_KEY):
        """ca: a CA bundle for an https endpoint, passed as --ca-cert (not AWS_CA_BUNDLE)."""
        root.mkdir(parents=True, exist_ok=True)
        self.extra = ["--ca-cert", str(ca)] if ca else []
        self.config = root / "rclone.conf"
        self.config.write_text("\n".join([
            f"[{REMOTE}]",
            "type = s3",
            "provider = Other",
            "env_auth = false",
            f"access_key_id = {ACCESS_KEY}",
            f"secret_access_key = {secret_key}",
            f"region = {REGION}",
            f"endpoint = {endpoint}",
            "force_path_style = true",
            "",
        ]))
        self.env = _clean_env(root)

    def __call__(self, *args, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        # no retries: a failing request must show up as a failure, not be papered over
        return run_cli([RCLONE, "--config", self.config, "--retries", "1", "--low-level-retries", "1",
                        "--contimeout", "10s", "--timeout", "30s", *self.extra, *args], self.env,
                       timeout, check)


@pytest.fixture
def rclone(server, tmp_path):
    return Rclone(server.endpoint, tmp_path / "rclone-home")


def _write_tree(root: Path, files: dict) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def _keys(s3, bucket: str, prefix: str = "") -> list:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


FILES = {"a.txt": b"alpha\n", "b/c.bin": rand_bytes(70_000, seed=11),
         "b/d/e.bin": rand_bytes(3, seed=12), "sp ace+plus.txt": b"odd name\n"}


def test_version_reported():
    r = subprocess.run([RCLONE, "version"], capture_output=True, text=True, timeout=30,
                       env=_clean_env(Path("/tmp")))
    assert r.returncode == 0 and r.stdout.startswith("rclone v"), r


def test_copy_lsf_cat(rclone, s3, bucket, tmp_path):
    src = tmp_path / "src"
    _write_tree(src, FILES)
    rclone("copy", src, f"{REMOTE}:{bucket}/tree")
    assert _keys(s3, bucket) == sorted(f"tree/{k}" for k in FILES)
    for rel, data in FILES.items():
        head = s3.head_object(Bucket=bucket, Key=f"tree/{rel}")
        assert head["ContentLength"] == len(data)
        assert head["ETag"].strip('"') == md5_hex(data)

    flat = rclone("lsf", f"{REMOTE}:{bucket}/tree").stdout.splitlines()
    assert sorted(flat) == sorted(["a.txt", "b/", "sp ace+plus.txt"]), flat
    rec = rclone("lsf", "-R", "--files-only", f"{REMOTE}:{bucket}/tree").stdout.splitlines()
    assert sorted(rec) == sorted(FILES), rec
    sized = rclone("lsf", "-R", "--files-only", "--format", "ps", f"{REMOTE}:{bucket}/tree").stdout
    assert sorted(sized.splitlines()) == sorted(f"{k};{len(v)}" for k, v in FILES.items()), sized
    # the bucket shows up in the remote's bucket list
    assert f"{bucket}/" in rclone("lsf", f"{REMOTE}:").stdout.splitlines()

    assert rclone("cat", f"{REMOTE}:{bucket}/tree/a.txt").stdout == "alpha\n"
    assert rclone("cat", f"{REMOTE}:{bucket}/tree/sp ace+plus.txt").stdout == "odd name\n"
    # a missing key: the server answers 404 and rclone lists nothing for it. (rclone cat and
    # copyto of a missing key exit 0 by design: after the 404 on HEAD the path is taken as an
    # empty "directory", the same as on AWS, so their exit code is not a test of the server.)
    assert expect_error(s3.head_object, Bucket=bucket, Key="tree/missing.txt", status=404)
    assert rclone("lsf", f"{REMOTE}:{bucket}/tree/missing.txt").stdout == ""
    assert rclone("cat", f"{REMOTE}:{bucket}/tree/missing.txt").stdout == ""


def test_check_equal_then_changed(rclone, bucket, tmp_path):
    src = tmp_path / "src"
    _write_tree(src, FILES)
    rclone("copy", src, f"{REMOTE}:{bucket}/chk")
    ok = rclone("check", src, f"{REMOTE}:{bucket}/chk", check=False)
    assert ok.returncode == 0, ok
    # same size, different content: only the md5 comparison can catch it
    data = bytearray(FILES["b/c.bin"])
    data[100] ^= 0xFF
    (src / "b/c.bin").write_bytes(bytes(data))
    bad = rclone("check", src, f"{REMOTE}:{bucket}/chk", check=False)
    assert bad.returncode != 0, bad
    assert "b/c.bin" in bad.stderr, bad.stderr
    # a file only on the local side is a difference too
    (src / "b/c.bin").write_bytes(FILES["b/c.bin"])
    (src / "new.txt").write_bytes(b"new\n")
    bad2 = rclone("check", src, f"{REMOTE}:{bucket}/chk", check=False)
    assert bad2.returncode != 0 and "new.txt" in bad2.stderr, bad2


def test_sync_with_deletes(rclone, s3, bucket, tmp_path):
    src = tmp_path / "src"
    _write_tree(src, FILES)
    rclone("sync", src, f"{REMOTE}:{bucket}/sync")
    assert _keys(s3, bucket) == sorted(f"sync/{k}" for k in FILES)

    (src / "b/d/e.bin").unlink()
    (src / "a.txt").write_bytes(b"alpha changed\n")
    rclone("sync", src, f"{REMOTE}:{bucket}/sync")
    assert _keys(s3, bucket) == sorted(f"sync/{k}" for k in FILES if k != "b/d/e.bin")
    assert s3.get_object(Bucket=bucket, Key="sync/a.txt")["Body"].read() == b"alpha changed\n"
    assert rclone("check", src, f"{REMOTE}:{bucket}/sync", check=False).returncode == 0

    # sync back down into an empty directory reproduces the tree byte for byte
    down = tmp_path / "down"
    down.mkdir()
    rclone("sync", f"{REMOTE}:{bucket}/sync", down)
    got = {p.relative_to(down).as_posix(): p.read_bytes() for p in down.rglob("*") if p.is_file()}
    assert got == {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.moto_deviates(reason="rclone 1.60 ends a multipart upload with HEAD ?versionId=null, "
                           "valid on S3 (the null version); moto answers 400")
def test_multipart_20mib_roundtrip(rclone, s3, bucket, tmp_path):
    data = rand_bytes(20 * MiB, seed=13)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    want = hashlib.md5(data).hexdigest()
    rclone("copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", src,
           f"{REMOTE}:{bucket}/big.bin", timeout=120)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-4"), head["ETag"]  # 4 parts of 5 MiB
    # rclone stores the whole-file md5 as metadata and reports it for multipart objects
    assert head["Metadata"].get("md5chksum"), head["Metadata"]
    md5sum = rclone("md5sum", f"{REMOTE}:{bucket}/big.bin").stdout.split()
    assert md5sum[:1] == [want], md5sum

    dst = tmp_path / "big.back"
    rclone("copyto", f"{REMOTE}:{bucket}/big.bin", dst, timeout=120)
    assert hashlib.md5(dst.read_bytes()).hexdigest() == want


# --------------------------------------------------------------------------
# HTTPS and authentication errors
# --------------------------------------------------------------------------

@pytest.fixture
def https_bucket(https_server):
    admin = https_server.client()
    name = unique_bucket_name("rclone-tls")
    admin.create_bucket(Bucket=name)
    yield name
    delete_bucket_quietly(admin, name)


@pytest.mark.slow
def test_https_copy_lsf_cat_check_sync_multipart(https_server, pki, https_bucket, tmp_path):
    rclone = Rclone(https_server.tls_endpoint, tmp_path / "home", ca=pki.ca)
    admin = https_server.client()
    b = https_bucket
    src = tmp_path / "src"
    _write_tree(src, FILES)
    rclone("copy", src, f"{REMOTE}:{b}/tree")
    assert _keys(admin, b) == sorted(f"tree/{k}" for k in FILES)
    head = admin.head_object(Bucket=b, Key="tree/a.txt")
    assert head["ETag"].strip('"') == md5_hex(FILES["a.txt"])
    assert head["ContentType"].startswith("text/plain"), head["ContentType"]
    assert "mtime" in head["Metadata"], head["Metadata"]  # rclone keeps the mtime as metadata
    assert sorted(rclone("lsf", "-R", "--files-only", f"{REMOTE}:{b}/tree").stdout.splitlines()) == sorted(FILES)
    assert rclone("cat", f"{REMOTE}:{b}/tree/sp ace+plus.txt").stdout == "odd name\n"
    assert rclone("check", src, f"{REMOTE}:{b}/tree", check=False).returncode == 0
    (src / "a.txt").write_bytes(b"alphA\n")  # same size, other bytes
    bad = rclone("check", src, f"{REMOTE}:{b}/tree", check=False)
    assert bad.returncode != 0 and "a.txt" in bad.stderr, bad

    (src / "b/d/e.bin").unlink()
    rclone("sync", src, f"{REMOTE}:{b}/tree")
    assert _keys(admin, b) == sorted(f"tree/{k}" for k in FILES if k != "b/d/e.bin")
    down = tmp_path / "down"
    down.mkdir()
    rclone("sync", f"{REMOTE}:{b}/tree", down)
    assert {p.relative_to(down).as_posix(): p.read_bytes() for p in down.rglob("*") if p.is_file()} == \
        {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*") if p.is_file()}

    data = rand_bytes(12 * MiB, seed="rclone-tls-big")
    (tmp_path / "big.bin").write_bytes(data)
    rclone("copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", tmp_path / "big.bin",
           f"{REMOTE}:{b}/big.bin", timeout=120)
    head = admin.head_object(Bucket=b, Key="big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].strip('"').endswith("-3"), head["ETag"]
    rclone("copyto", f"{REMOTE}:{b}/big.bin", tmp_path / "big.back", timeout=120)
    assert hashlib.md5((tmp_path / "big.back").read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()


def test_https_untrusted_ca_fails(https_server, pki, https_bucket, tmp_path):
    rclone = Rclone(https_server.tls_endpoint, tmp_path / "home", ca=pki.other_ca)
    r = rclone("lsf", f"{REMOTE}:{https_bucket}", check=False)
    assert r.returncode != 0, r
    assert "certificate" in r.stderr.lower(), r.stderr


@pytest.mark.moto_deviates(reason="moto does not verify signatures")
def test_wrong_secret_key_is_403(server, bucket, tmp_path):
    rclone = Rclone(server.endpoint, tmp_path / "home", secret_key=SECRET_KEY + "-wrong")
    r = rclone("lsf", f"{REMOTE}:{bucket}", check=False)
    assert r.returncode != 0 and "403" in r.stderr and "SignatureDoesNotMatch" in r.stderr, r.stderr
    src = tmp_path / "f.txt"
    src.write_bytes(b"x")
    r = rclone("copyto", src, f"{REMOTE}:{bucket}/f.txt", check=False)
    assert r.returncode != 0 and "403" in r.stderr, r.stderr
