"""The AWS CLI against the server: `aws s3` high-level commands and a few `aws s3api`
calls, with every CLI version installed (Debian's v2 and the image's v1)."""

import functools
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import (ACCESS_KEY, REGION, SECRET_KEY, MiB, delete_bucket_quietly, expect_error,
                      md5_hex, rand_bytes, unique_bucket_name)


@functools.lru_cache(maxsize=None)
def _cli_version(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                             env=_clean_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.split()[0] if out.returncode == 0 and text.startswith("aws-cli/") else None


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                        "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true",
               AWS_PAGER="", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    return env


def _find_clis():
    """Every distinct aws CLI on this machine: Debian's v2 and the image's v1."""
    candidates = ["/usr/bin/aws", shutil.which("aws"), "/root/.pyenv/shims/aws"]
    found, seen = [], set()
    for c in candidates:
        if not c or not os.path.exists(c):
            continue
        v = _cli_version(c)
        if v and v not in seen:
            seen.add(v)
            found.append(pytest.param(c, id=f"awscli-v{v.split('/')[1].split('.')[0]}"))
    return found or [pytest.param(None, id="no-awscli",
                                  marks=pytest.mark.skip(reason="no aws CLI installed"))]


CLIS = _find_clis()


class AwsCli:
    def __init__(self, path: str, endpoint: str):
        self.path = path
        self.endpoint = endpoint
        self.version = _cli_version(path)

    def __call__(self, *args, check=True, timeout=300, cwd=None) -> subprocess.CompletedProcess:
        argv = [self.path, "--endpoint-url", self.endpoint, *map(str, args)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_clean_env(),
                             cwd=cwd)
        if check and out.returncode != 0:
            pytest.fail(f"{self.version}: {' '.join(argv)} exited {out.returncode}\n"
                        f"stdout: {out.stdout[-3000:]}\nstderr: {out.stderr[-3000:]}")
        return out

    def json(self, *args):
        return json.loads(self(*args, "--output", "json").stdout or "null")


@pytest.fixture(params=CLIS)
def aws(request, server):
    return AwsCli(request.param, server.endpoint)


@pytest.fixture
def cli_bucket(s3):
    name = unique_bucket_name("cli")
    yield name
    delete_bucket_quietly(s3, name)


def file_md5(p: Path) -> str:
    h = hashlib.md5()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def remote_keys(s3, bucket, prefix=""):
    keys, token = [], None
    while True:
        kw = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def make_tree(root: Path) -> dict:
    files = {
        "a.txt": b"alpha\n",
        "sub/b.bin": rand_bytes(70_000),
        "sub/deeper/c with space.txt": b"gamma " * 100,
        "ünï/cødé.txt": "unicode ✓".encode(),
        "empty": b"",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_mb_ls_rb(aws, s3, cli_bucket):
    aws("s3", "mb", f"s3://{cli_bucket}")
    s3.head_bucket(Bucket=cli_bucket)
    assert cli_bucket in aws("s3", "ls").stdout
    aws("s3", "rb", f"s3://{cli_bucket}")
    expect_error(s3.head_bucket, Bucket=cli_bucket, status=404)


def test_rb_force_removes_contents(aws, s3, cli_bucket, tmp_path):
    aws("s3", "mb", f"s3://{cli_bucket}")
    s3.put_object(Bucket=cli_bucket, Key="x/y", Body=b"1")
    out = aws("s3", "rb", f"s3://{cli_bucket}", check=False)
    assert out.returncode != 0  # BucketNotEmpty
    s3.head_bucket(Bucket=cli_bucket)
    aws("s3", "rb", f"s3://{cli_bucket}", "--force")
    expect_error(s3.head_bucket, Bucket=cli_bucket, status=404)


def test_cp_single_file_roundtrip(aws, s3, cli_bucket, tmp_path):
    aws("s3", "mb", f"s3://{cli_bucket}")
    src = tmp_path / "small.bin"
    src.write_bytes(rand_bytes(100_000))
    aws("s3", "cp", src, f"s3://{cli_bucket}/dir/small.bin")
    head = s3.head_object(Bucket=cli_bucket, Key="dir/small.bin")
    assert head["ETag"] == f'"{file_md5(src)}"'
    assert head["ContentLength"] == 100_000
    dst = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{cli_bucket}/dir/small.bin", dst)
    assert dst.read_bytes() == src.read_bytes()


def test_cp_20mib_multipart(aws, s3, cli_bucket, tmp_path):
    aws("s3", "mb", f"s3://{cli_bucket}")
    src = tmp_path / "big.bin"
    src.write_bytes(rand_bytes(20 * MiB))
    aws("s3", "cp", src, f"s3://{cli_bucket}/big.bin")
    head = s3.head_object(Bucket=cli_bucket, Key="big.bin")
    assert head["ContentLength"] == 20 * MiB
    # above the CLI's 8 MiB threshold the upload is multipart: 8 + 8 + 4 MiB
    assert head["ETag"].endswith('-3"'), head["ETag"]
    dst = tmp_path / "big.back"
    aws("s3", "cp", f"s3://{cli_bucket}/big.bin", dst)
    assert dst.stat().st_size == 20 * MiB
    assert file_md5(dst) == file_md5(src)


def test_cp_recursive_both_ways(aws, s3, cli_bucket, tmp_path):
    aws("s3", "mb", f"s3://{cli_bucket}")
    src = tmp_path / "src"
    files = make_tree(src)
    aws("s3", "cp", "--recursive", src, f"s3://{cli_bucket}/up/")
    assert sorted(remote_keys(s3, cli_bucket)) == sorted(f"up/{k}" for k in files)
    for rel, data in files.items():
        assert s3.get_object(Bucket=cli_bucket, Key=f"up/{rel}")["Body"].read() == data
    out = tmp_path / "out"
    aws("s3", "cp", "--recursive", f"s3://{cli_bucket}/up/", out)
    assert tree(out) == files


def test_sync_both_ways_with_delete(aws, s3, cli_bucket, tmp_path):
    aws("s3", "mb", f"s3://{cli_bucket}")
    local = tmp_path / "local"
    files = make_tree(local)
    aws("s3", "sync", local, f"s3://{cli_bucket}/s")
    assert sorted(remote_keys(s3, cli_bucket)) == sorted(f"s/{k}" for k in files)

    # local changes: delete one, grow one, add one -> sync --delete mirrors them
    (local / "a.txt").unlink()
    (local / "sub/b.bin").write_bytes(b"changed and of another size")
    (local / "new/file.txt").parent.mkdir()
    (local / "new/file.txt").write_bytes(b"new")
    aws("s3", "sync", "--delete", local, f"s3://{cli_bucket}/s")
    expected = tree(local)
    assert sorted(remote_keys(s3, cli_bucket)) == sorted(f"s/{k}" for k in expected)
    assert s3.get_object(Bucket=cli_bucket, Key="s/sub/b.bin")["Body"].read() == b"changed and of another size"

    # remote changes -> sync down with --delete mirrors them locally
    mirror = tmp_path / "mirror"
    aws("s3", "sync", f"s3://{cli_bucket}/s", mirror)
    assert tree(mirror) == expected
    s3.delete_object(Bucket=cli_bucket, Key="s/new/file.txt")
    s3.put_object(Bucket=cli_bucket, Key="s/remote-only.txt", Body=b"from the server")
    aws("s3", "sync", "--delete", f"s3://{cli_bucket}/s", mirror)
    expected.pop("new/file.txt")
    expected["remote-only.txt"] = b"from the server"
    assert tree(mirror) == expected
    # nothing left to do
    again = aws("s3", "sync", "--delete", f"s3://{cli_bucket}/s", mirror)
    assert "download:" not in again.stdout and "delete:" not in again.stdout


def test_ls_recursive(aws, s3, cli_bucket):
    aws("s3", "mb", f"s3://{cli_bucket}")
    keys = {"top.txt": b"1", "d/one.txt": b"22", "d/e/two words.txt": b"333"}
    for k, v in keys.items():
        s3.put_object(Bucket=cli_bucket, Key=k, Body=v)
    out = aws("s3", "ls", "--recursive", f"s3://{cli_bucket}").stdout
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 3, out
    for k, v in keys.items():
        assert any(ln.endswith(" " + k) and ln.split()[2] == str(len(v)) for ln in lines), (k, out)
    top = aws("s3", "ls", f"s3://{cli_bucket}/").stdout
    assert "PRE d/" in top and "top.txt" in top and "one.txt" not in top


def test_rm_recursive(aws, s3, cli_bucket):
    aws("s3", "mb", f"s3://{cli_bucket}")
    for k in ("gone/1", "gone/2/3", "gone/x y", "keep/1", "gone-not/1"):
        s3.put_object(Bucket=cli_bucket, Key=k, Body=b"x")
    aws("s3", "rm", "--recursive", f"s3://{cli_bucket}/gone/")
    assert sorted(remote_keys(s3, cli_bucket)) == ["gone-not/1", "keep/1"]
    aws("s3", "rm", f"s3://{cli_bucket}/keep/1")
    assert remote_keys(s3, cli_bucket) == ["gone-not/1"]


def test_s3api_put_head_list(aws, s3, cli_bucket, tmp_path):
    aws("s3api", "create-bucket", "--bucket", cli_bucket)
    body = tmp_path / "body.json"
    body.write_bytes(b'{"hello": "world"}')
    put = aws.json("s3api", "put-object", "--bucket", cli_bucket, "--key", "docs/hello.json",
                   "--body", body, "--content-type", "application/json",
                   "--metadata", "origin=cli,stage=test")
    assert put["ETag"] == f'"{md5_hex(body.read_bytes())}"'
    head = aws.json("s3api", "head-object", "--bucket", cli_bucket, "--key", "docs/hello.json")
    assert head["ContentLength"] == len(body.read_bytes())
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"origin": "cli", "stage": "test"}
    assert head["ETag"] == put["ETag"]
    missing = aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "nope", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr
    s3.put_object(Bucket=cli_bucket, Key="docs/other", Body=b"")
    s3.put_object(Bucket=cli_bucket, Key="elsewhere", Body=b"")
    listing = aws.json("s3api", "list-objects-v2", "--bucket", cli_bucket, "--prefix", "docs/")
    assert [o["Key"] for o in listing["Contents"]] == ["docs/hello.json", "docs/other"]
    assert [o["Size"] for o in listing["Contents"]] == [len(body.read_bytes()), 0]
