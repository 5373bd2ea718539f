"""s3fs-fuse (Debian's s3fs 1.90, libcurl with GnuTLS) mounting a bucket of the server, over
plain HTTP and over HTTPS with the test CA (s3fs finds it through CURL_CA_BUNDLE).

Each test mounts its own bucket with `s3fs BUCKET DIR -f -o url=...,use_path_request_style,
passwd_file=...` (foreground, as a child process, log in pytest's tmp dir) and unmounts it
in a finalizer (fusermount -u, then SIGTERM/SIGKILL, then a lazy unmount). Files written
through the mount are checked with boto3 (bytes, ETag, metadata) and objects put with boto3
are read through the mount. Covered: small and 12 MiB files (multipart with
multipart_size=5), ls/stat, rm, rename (CopyObject + DeleteObject), chmod (a metadata-only
CopyObject), content type from the file name, ENOENT for a missing file, mkdir/rmdir (s3fs
keeps a directory as an empty `dir/` marker object, which the file:// under store keeps as
a directory), and a mount with a wrong secret or a CA that
did not sign the server's certificate failing.

Skipped, with the reason, when s3fs or fusermount is missing or /dev/fuse cannot be opened."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (ACCESS_KEY, FUSERMOUNT, fuse_problem, SECRET_KEY, MiB, _die_with_parent,
                      _LIVE_PROCS, _tail, delete_bucket_quietly, expect_error, md5_hex,
                      rand_bytes, unique_bucket_name)

S3FS = shutil.which("s3fs") or ("/usr/bin/s3fs" if os.path.exists("/usr/bin/s3fs") else None)

pytestmark = pytest.mark.reservoir_only

def _fuse_problem() -> str | None:
    if S3FS is None:
        return "s3fs is not installed (apt-get install s3fs)"
    return fuse_problem()


@pytest.fixture(scope="module", autouse=True)
def _needs_fuse():
    why = _fuse_problem()
    if why:
        pytest.skip(why)


def s3fs_version() -> str:
    r = subprocess.run([S3FS, "--version"], capture_output=True, text=True, timeout=30)
    return (r.stdout + r.stderr).strip().splitlines()[0]


@pytest.fixture(scope="module")
def srv(reservoir_factory, pki):
    """Plain and HTTPS listeners, the default file:// under store."""
    return reservoir_factory(tls=(pki.cert, pki.key))


@pytest.fixture(scope="module")
def admin(srv):
    return srv.client()


class S3fsMount:
    """One `s3fs -f` process serving `bucket` at `mountpoint`."""

    def __init__(self, endpoint: str, bucket: str, root: Path, *, ca: Path | None = None,
                 secret_key: str = SECRET_KEY, extra: tuple = ()):
        self.endpoint, self.bucket = endpoint, bucket
        root.mkdir(parents=True, exist_ok=True)
        self.mountpoint = root / "mnt"
        self.mountpoint.mkdir(exist_ok=True)
        self.passwd = root / "passwd-s3fs"
        self.passwd.write_text(f"{ACCESS_KEY}:{secret_key}\n")
        self.passwd.chmod(0o600)  # s3fs refuses a password file others can read
        self.log_path = root / "s3fs.log"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AWS", "CURL_", "SSL_")) and k not in ("PYTHONPATH", "PYTHONHOME")}
        for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            self.env.pop(k, None)
        self.env.update(HOME=str(root), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        retries = 1  # a failing request must show up as a failure, not be retried away
        if ca is not None:
            self.env["CURL_CA_BUNDLE"] = str(ca)  # s3fs hands it to libcurl as CAINFO
            # s3fs 1.90 sets CAINFO only on curl handles it re-makes for a retry: the first
            # request on a fresh handle is verified against the system store, fails
            # (CURLE_SSL_CACERT) and is retried with the bundle. So https needs retries.
            retries = 3
        opts = [f"url={endpoint}", "use_path_request_style", f"passwd_file={self.passwd}",
                "endpoint=us-east-1", "multipart_size=5", "parallel_count=3", "dbglevel=info",
                f"retries={retries}", "connect_timeout=10", "readwrite_timeout=30", *extra]
        self.argv = [S3FS, bucket, str(self.mountpoint), "-f", "-o", ",".join(opts)]
        self.proc: subprocess.Popen | None = None

    def mounted(self) -> bool:
        return os.path.ismount(self.mountpoint)

    def start(self, timeout: float = 20.0) -> bool:
        """True once mounted; False if s3fs exited first (its log says why)."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env,
                                     preexec_fn=_die_with_parent)
        log.close()
        _LIVE_PROCS.append(self.proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.mounted():
                # the mount appears before s3fs has checked the bucket: make one call
                with contextlib.suppress(OSError):
                    os.listdir(self.mountpoint)
                if self.proc.poll() is None and self.mounted():
                    return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"s3fs did not mount within {timeout}s: {' '.join(self.argv)}\n{self.log()}")

    def log(self, n: int = 40) -> str:
        return _tail(self.log_path, n)

    def stop(self) -> None:
        if self.mounted():
            subprocess.run([FUSERMOUNT, "-u", str(self.mountpoint)], capture_output=True, timeout=30)
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        if self.mounted():  # s3fs gone but the kernel still has the mount
            subprocess.run([FUSERMOUNT, "-u", "-z", str(self.mountpoint)], capture_output=True, timeout=30)


@pytest.fixture(params=["http", "https"])
def scheme(request):
    return request.param


@pytest.fixture
def bkt(admin, request):
    name = unique_bucket_name(request.node.name.split("[")[0].replace("test_", ""))
    admin.create_bucket(Bucket=name)
    yield name
    delete_bucket_quietly(admin, name)


@pytest.fixture
def mount_factory(srv, pki, tmp_path):
    mounts: list[S3fsMount] = []

    def make(bucket: str, scheme: str = "http", *, ca=None, secret_key=SECRET_KEY,
             expect_ok: bool = True) -> S3fsMount:
        endpoint = srv.tls_endpoint if scheme == "https" else srv.endpoint
        if scheme == "https" and ca is None:
            ca = pki.ca
        m = S3fsMount(endpoint, bucket, tmp_path / f"s3fs-{len(mounts)}", ca=ca,
                      secret_key=secret_key)
        mounts.append(m)
        ok = m.start()
        if expect_ok and not ok:
            pytest.fail(f"s3fs exited (code {m.proc.returncode}) instead of mounting: "
                        f"{' '.join(m.argv)}\n{m.log()}\nserver log:\n{srv.log_tail(20)}")
        return m

    yield make
    problems = []
    for m in mounts:
        m.stop()
        if m.mounted():
            problems.append(f"{m.mountpoint} is still mounted")
    assert not problems, problems


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def _keys(admin, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in admin.list_objects_v2(Bucket=bucket).get("Contents", []))


# --------------------------------------------------------------------------

def test_version_reported():
    v = s3fs_version()
    assert "V1." in v, v


def test_write_read_small_and_multipart(mount_factory, admin, bkt, scheme):
    m = mount_factory(bkt, scheme)
    mnt = m.mountpoint
    small = b"hello from s3fs\n" * 64
    big = rand_bytes(12 * MiB + 777, seed=f"s3fs-big-{scheme}")
    (mnt / "small.txt").write_bytes(small)
    (mnt / "big.bin").write_bytes(big)

    head = admin.head_object(Bucket=bkt, Key="small.txt")
    assert head["ContentLength"] == len(small) and head["ETag"] == f'"{md5_hex(small)}"'
    assert head["ContentType"] == "text/plain", head["ContentType"]  # from /etc/mime.types
    assert head["Metadata"].get("mode") and int(head["Metadata"]["mode"]) & 0o777, head["Metadata"]
    head = admin.head_object(Bucket=bkt, Key="big.bin")
    assert head["ContentLength"] == len(big)
    # a multipart upload (s3fs picks the part sizes from multipart_size=5 and its buffers)
    parts = head["ETag"].strip('"').rpartition("-")[2]
    assert "-" in head["ETag"] and int(parts) >= 2, (head["ETag"], m.log())
    assert _sha(admin.get_object(Bucket=bkt, Key="big.bin")["Body"].read()) == _sha(big)

    # objects put with boto3 are read through the mount (never in this kernel's page cache)
    other = rand_bytes(6 * MiB + 1, seed=f"s3fs-other-{scheme}")
    admin.put_object(Bucket=bkt, Key="dir/other.bin", Body=other)
    admin.put_object(Bucket=bkt, Key="dir/deep/x.txt", Body=b"x")
    assert sorted(os.listdir(mnt)) == ["big.bin", "dir", "small.txt"]
    assert sorted(os.listdir(mnt / "dir")) == ["deep", "other.bin"]
    assert (mnt / "dir").is_dir() and (mnt / "dir/deep").is_dir()
    st = os.stat(mnt / "dir/other.bin")
    assert stat.S_ISREG(st.st_mode) and st.st_size == len(other)
    assert _file_sha(mnt / "dir/other.bin") == _sha(other)
    assert (mnt / "dir/deep/x.txt").read_bytes() == b"x"
    with open(mnt / "dir/other.bin", "rb") as f:  # a read in the middle: a ranged GET
        f.seek(5 * MiB - 3)
        assert f.read(10) == other[5 * MiB - 3:5 * MiB + 7]
    # a new file in a directory that exists only as a key prefix
    (mnt / "dir/deep/new.txt").write_bytes(b"new in an implied directory")
    assert admin.get_object(Bucket=bkt, Key="dir/deep/new.txt")["Body"].read() == b"new in an implied directory"
    assert os.stat(mnt / "big.bin").st_size == len(big)
    assert _file_sha(mnt / "big.bin") == _sha(big)

    # overwrite in place with other content and size
    (mnt / "small.txt").write_bytes(b"changed")
    assert admin.get_object(Bucket=bkt, Key="small.txt")["Body"].read() == b"changed"


def test_rm_rename_chmod_and_enoent(mount_factory, admin, bkt, scheme):
    m = mount_factory(bkt, scheme)
    mnt = m.mountpoint
    admin.put_object(Bucket=bkt, Key="a/one.txt", Body=b"one")
    admin.put_object(Bucket=bkt, Key="a/two.json", Body=b'{"two": 2}', ContentType="application/json")

    # ENOENT for a missing file, in an existing and a missing directory
    for p in (mnt / "a/missing.txt", mnt / "nodir/missing.txt"):
        with pytest.raises(FileNotFoundError) as ei:
            p.read_bytes()
        assert ei.value.errno == errno.ENOENT
        with pytest.raises(FileNotFoundError):
            os.stat(p)
    assert not (mnt / "a/missing.txt").exists()

    os.remove(mnt / "a/one.txt")
    expect_error(admin.head_object, Bucket=bkt, Key="a/one.txt", status=404)
    assert os.listdir(mnt / "a") == ["two.json"]

    # rename: CopyObject to the new key (keeping the data and content type), then a delete
    os.rename(mnt / "a/two.json", mnt / "a/renamed.json")
    assert _keys(admin, bkt) == ["a/renamed.json"]
    got = admin.get_object(Bucket=bkt, Key="a/renamed.json")
    assert got["Body"].read() == b'{"two": 2}' and got["ContentType"] == "application/json"
    assert (mnt / "a/renamed.json").read_bytes() == b'{"two": 2}'

    # chmod: s3fs rewrites the object's metadata with a CopyObject onto itself (REPLACE)
    os.chmod(mnt / "a/renamed.json", 0o640)
    assert stat.S_IMODE(os.stat(mnt / "a/renamed.json").st_mode) == 0o640
    head = admin.head_object(Bucket=bkt, Key="a/renamed.json")
    assert int(head["Metadata"]["mode"]) & 0o777 == 0o640, head["Metadata"]
    assert head["ContentLength"] == len(b'{"two": 2}')
    assert admin.get_object(Bucket=bkt, Key="a/renamed.json")["Body"].read() == b'{"two": 2}'


def test_mkdir_rmdir(mount_factory, srv, admin, bkt, scheme):
    """mkdir stores the empty marker object `dir/`, which the default file:// under store
    keeps as a directory."""
    m = mount_factory(bkt, scheme)
    mnt = m.mountpoint
    os.mkdir(mnt / "d")
    os.mkdir(mnt / "d/sub")
    os.mkdir(mnt / "d/empty")
    (mnt / "d/sub/f.txt").write_bytes(b"in a new directory")
    assert sorted(os.listdir(mnt / "d")) == ["empty", "sub"]
    assert (mnt / "d/sub").is_dir() and (mnt / "d/empty").is_dir()
    assert _keys(admin, bkt) == ["d/", "d/empty/", "d/sub/", "d/sub/f.txt"]
    assert admin.head_object(Bucket=bkt, Key="d/empty/")["ContentLength"] == 0
    # persisted to the under store: the markers are directories there
    srv.sync(f"{bkt}/")
    assert srv.ufs_path(bkt, "d/empty").is_dir()
    assert srv.ufs_path(bkt, "d/sub/f.txt").read_bytes() == b"in a new directory"

    with pytest.raises(OSError) as ei:
        os.rmdir(mnt / "d/sub")  # not empty
    assert ei.value.errno == errno.ENOTEMPTY
    os.remove(mnt / "d/sub/f.txt")
    os.rmdir(mnt / "d/sub")
    os.rmdir(mnt / "d/empty")
    assert os.listdir(mnt / "d") == []
    os.rmdir(mnt / "d")
    assert _keys(admin, bkt) == []
    assert os.listdir(mnt) == []


def test_wrong_secret_fails_to_mount(mount_factory, bkt, scheme):
    m = mount_factory(bkt, scheme, secret_key=SECRET_KEY + "-wrong", expect_ok=False)
    # s3fs checks the bucket at start-up and exits on the 403
    deadline = time.monotonic() + 20
    while m.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    # (s3fs -f exits 0 after giving up; its log says why)
    assert m.proc.poll() is not None, m.log()
    assert not m.mounted()
    log = m.log(200)
    assert "HTTP response code 403" in log and "SignatureDoesNotMatch" in log, log


def test_https_untrusted_ca_fails_to_mount(mount_factory, pki, bkt):
    m = mount_factory(bkt, "https", ca=pki.other_ca, expect_ok=False)
    deadline = time.monotonic() + 20
    while m.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert m.proc.poll() is not None, m.log()
    assert not m.mounted()
    assert "CURLE_SSL_CACERT" in m.log(200), m.log()
