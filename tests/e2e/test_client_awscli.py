"""The AWS CLI (every version installed: Debian's v2 and the image's v1) beyond what
test_awscli.py does over plain HTTP: the whole `aws s3` workflow over HTTPS with the test CA
in AWS_CA_BUNDLE (mb, cp single and multipart with a CLI config file that lowers the
multipart threshold, cp --recursive, sync up and down with --delete, ls --recursive,
rm --recursive, rb --force), and, over HTTP and HTTPS, `aws s3api` copy-object (metadata COPY and
REPLACE), a multipart upload by hand (create-multipart-upload, upload-part, list-parts,
complete-multipart-upload, get-object --part-number), put-object with --checksum-algorithm, and the errors as the
CLI reports them (NoSuchKey, 404 on head-object, 403 SignatureDoesNotMatch)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import (MiB, SECRET_KEY, delete_bucket_quietly, md5_hex, multipart_etag, rand_bytes,
                      unique_bucket_name)
from test_awscli import CLIS, _clean_env, file_md5, remote_keys, tree

pytestmark = pytest.mark.reservoir_only  # needs the HTTPS listener


class Cli:
    def __init__(self, path: str, endpoint: str, ca: Path | None, config: Path | None = None,
                 secret_key: str | None = None):
        self.path, self.endpoint = path, endpoint
        self.env = _clean_env()
        if ca is None:
            self.env.pop("AWS_CA_BUNDLE", None)
        else:
            self.env["AWS_CA_BUNDLE"] = str(ca)
        if config is not None:
            self.env["AWS_CONFIG_FILE"] = str(config)
        if secret_key is not None:
            self.env["AWS_SECRET_ACCESS_KEY"] = secret_key

    def __call__(self, *args, check=True, timeout=180) -> subprocess.CompletedProcess:
        argv = [self.path, "--endpoint-url", self.endpoint, "--cli-read-timeout", "30", *map(str, args)]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"{' '.join(argv)} did not finish within {timeout}s; stderr {e.stderr!r}")
        if check and out.returncode != 0:
            pytest.fail(f"{' '.join(argv)} exited {out.returncode}\nstdout: {out.stdout[-3000:]}\n"
                        f"stderr: {out.stderr[-3000:]}", pytrace=False)
        return out

    def json(self, *args):
        return json.loads(self(*args, "--output", "json").stdout or "null")


@pytest.fixture(params=CLIS)
def cli_path(request):
    return request.param


@pytest.fixture(params=["http", "https"])
def scheme(request):
    return request.param


@pytest.fixture(scope="module")
def admin(https_server):
    return https_server.client()


@pytest.fixture
def bkt(admin):
    name = unique_bucket_name("awscli")
    yield name
    delete_bucket_quietly(admin, name)


def make_cli(path, srv, pki, scheme, **kw) -> Cli:
    if scheme == "https":
        return Cli(path, srv.tls_endpoint, pki.ca, **kw)
    return Cli(path, srv.endpoint, None, **kw)


def _make_tree(root: Path) -> dict:
    files = {"a.txt": b"alpha\n", "sub/b.bin": rand_bytes(70_000, seed="cli-b"),
             "sub/deeper/c with space.txt": b"gamma " * 100, "ünï/cødé.txt": "unicode ✓".encode(),
             "empty": b""}
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_s3_workflow_over_https(cli_path, https_server, pki, admin, bkt, tmp_path):
    config = tmp_path / "aws-config"
    config.write_text("[default]\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n"
                      "  max_concurrent_requests = 4\n")
    aws = make_cli(cli_path, https_server, pki, "https", config=config)
    aws("s3", "mb", f"s3://{bkt}")
    admin.head_bucket(Bucket=bkt)

    # single PUT, with content type and metadata
    small = tmp_path / "small.json"
    small.write_bytes(b'{"k": "v"}' * 100)
    aws("s3", "cp", small, f"s3://{bkt}/one/small.json", "--content-type", "application/json",
        "--metadata", "origin=cli")
    head = admin.head_object(Bucket=bkt, Key="one/small.json")
    assert head["ETag"] == f'"{file_md5(small)}"'
    assert head["ContentType"] == "application/json" and head["Metadata"] == {"origin": "cli"}

    # multipart: 12 MiB + 5 bytes in 5 MiB parts (the config file's threshold and chunk size)
    big = tmp_path / "big.bin"
    data = rand_bytes(12 * MiB + 5, seed=f"cli-big-{cli_path}")
    big.write_bytes(data)
    aws("s3", "cp", big, f"s3://{bkt}/one/big.bin")
    head = admin.head_object(Bucket=bkt, Key="one/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == '"%s"' % multipart_etag([data[:5 * MiB], data[5 * MiB:10 * MiB], data[10 * MiB:]])
    back = tmp_path / "big.back"
    aws("s3", "cp", f"s3://{bkt}/one/big.bin", back)  # ranged GETs above the threshold
    assert file_md5(back) == md5_hex(data)

    # cp --recursive up (down: the sync below, into a directory with one stale file)
    src = tmp_path / "src"
    files = _make_tree(src)
    aws("s3", "cp", "--recursive", src, f"s3://{bkt}/rec/")
    assert sorted(remote_keys(admin, bkt, "rec/")) == sorted(f"rec/{k}" for k in files)
    for rel, content in files.items():
        assert admin.get_object(Bucket=bkt, Key=f"rec/{rel}")["Body"].read() == content
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)
    (out / "stale/local-only.txt").write_bytes(b"deleted by sync --delete")

    # sync up with --delete, then down with --delete
    (src / "a.txt").unlink()
    (src / "sub/b.bin").write_bytes(b"changed")
    (src / "new.txt").write_bytes(b"new")
    aws("s3", "sync", "--delete", src, f"s3://{bkt}/rec")
    want = tree(src)
    assert sorted(remote_keys(admin, bkt, "rec/")) == sorted(f"rec/{k}" for k in want)
    admin.put_object(Bucket=bkt, Key="rec/remote-only.txt", Body=b"remote")
    aws("s3", "sync", "--delete", f"s3://{bkt}/rec", out)
    want["remote-only.txt"] = b"remote"
    assert tree(out) == want

    # ls --recursive: every object with its size
    listing = aws("s3", "ls", "--recursive", f"s3://{bkt}").stdout
    lines = [ln for ln in listing.splitlines() if ln.strip()]
    expected = {"one/small.json": small.stat().st_size, "one/big.bin": len(data),
                **{f"rec/{k}": len(v) for k, v in want.items()}}
    assert len(lines) == len(expected), listing
    for key, size in expected.items():
        assert any(ln.endswith(" " + key) and ln.split()[2] == str(size) for ln in lines), (key, listing)

    # rm --recursive, rb
    aws("s3", "rm", "--recursive", f"s3://{bkt}/rec/")
    assert sorted(remote_keys(admin, bkt)) == ["one/big.bin", "one/small.json"]
    aws("s3", "rb", "--force", f"s3://{bkt}")
    assert bkt not in [b["Name"] for b in admin.list_buckets()["Buckets"]]


def test_s3api_copy_object_and_errors(cli_path, scheme, https_server, pki, admin, bkt, tmp_path):
    aws = make_cli(cli_path, https_server, pki, scheme)
    admin.create_bucket(Bucket=bkt)
    body = tmp_path / "body.txt"
    body.write_bytes(b"copy me " * 1000)
    put = aws.json("s3api", "put-object", "--bucket", bkt, "--key", "src/obj.txt", "--body", body,
                   "--content-type", "text/plain", "--metadata", "a=1,b=two",
                   "--checksum-algorithm", "CRC32")
    assert put["ETag"] == f'"{md5_hex(body.read_bytes())}"'

    cp = aws.json("s3api", "copy-object", "--bucket", bkt, "--key", "dst/copy.txt",
                  "--copy-source", f"{bkt}/src/obj.txt")
    assert cp["CopyObjectResult"]["ETag"] == put["ETag"]
    head = admin.head_object(Bucket=bkt, Key="dst/copy.txt")
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"a": "1", "b": "two"}
    assert head["ContentLength"] == body.stat().st_size

    aws("s3api", "copy-object", "--bucket", bkt, "--key", "dst/replaced.txt",
        "--copy-source", f"{bkt}/src/obj.txt", "--metadata-directive", "REPLACE",
        "--content-type", "application/x-replaced", "--metadata", "c=3")
    head = aws.json("s3api", "head-object", "--bucket", bkt, "--key", "dst/replaced.txt")
    assert head["ContentType"] == "application/x-replaced" and head["Metadata"] == {"c": "3"}
    got = tmp_path / "got.txt"
    aws("s3api", "get-object", "--bucket", bkt, "--key", "dst/replaced.txt", got)
    assert got.read_bytes() == body.read_bytes()

    assert sorted(remote_keys(admin, bkt, "dst/")) == ["dst/copy.txt", "dst/replaced.txt"]

    # errors as the CLI shows them
    r = aws("s3api", "get-object", "--bucket", bkt, "--key", "nope", tmp_path / "nope", check=False)
    assert r.returncode != 0 and "NoSuchKey" in r.stderr, r.stderr
    r = aws("s3api", "head-object", "--bucket", bkt, "--key", "nope", check=False)
    assert r.returncode != 0 and "404" in r.stderr, r.stderr
    bad = make_cli(cli_path, https_server, pki, scheme, secret_key=SECRET_KEY + "-wrong")
    r = bad("s3api", "get-object", "--bucket", bkt, "--key", "src/obj.txt", tmp_path / "x", check=False)
    assert r.returncode != 0 and "SignatureDoesNotMatch" in r.stderr, r.stderr


def test_s3api_multipart_by_hand(cli_path, scheme, https_server, pki, admin, bkt, tmp_path):
    aws = make_cli(cli_path, https_server, pki, scheme)
    admin.create_bucket(Bucket=bkt)
    key = "mp/by hand.bin"
    parts = [rand_bytes(5 * MiB, seed="hand-1"), rand_bytes(MiB + 3, seed="hand-2")]
    up = aws.json("s3api", "create-multipart-upload", "--bucket", bkt, "--key", key,
                  "--content-type", "application/x-parts", "--metadata", "by=hand")
    upload_id = up["UploadId"]
    done = []
    for n, data in enumerate(parts, start=1):
        f = tmp_path / f"part{n}"
        f.write_bytes(data)
        r = aws.json("s3api", "upload-part", "--bucket", bkt, "--key", key, "--part-number", n,
                     "--upload-id", upload_id, "--body", f)
        assert r["ETag"] == f'"{md5_hex(data)}"'
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = aws.json("s3api", "list-parts", "--bucket", bkt, "--key", key, "--upload-id", upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == \
        [(d["PartNumber"], d["ETag"], len(parts[i])) for i, d in enumerate(done)]

    spec = tmp_path / "parts.json"
    spec.write_text(json.dumps({"Parts": done}))
    fin = aws.json("s3api", "complete-multipart-upload", "--bucket", bkt, "--key", key,
                   "--upload-id", upload_id, "--multipart-upload", f"file://{spec}")
    assert fin["ETag"] == f'"{multipart_etag(parts)}"'
    head = admin.head_object(Bucket=bkt, Key=key)
    assert head["ContentLength"] == sum(map(len, parts))
    assert head["ContentType"] == "application/x-parts" and head["Metadata"] == {"by": "hand"}
    r = aws.json("s3api", "get-object", "--bucket", bkt, "--key", key, "--part-number", "2",
                 tmp_path / "p2")
    assert (tmp_path / "p2").read_bytes() == parts[1] and r["PartsCount"] == 2
    assert md5_hex(admin.get_object(Bucket=bkt, Key=key)["Body"].read()) == md5_hex(b"".join(parts))
