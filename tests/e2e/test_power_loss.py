"""Power cuts: the server's data dir lives on tests/tools/powercut_fs.py, a FUSE file system
that keeps every write in memory until it is fsynced. The server is killed with SIGKILL in
the middle of concurrent PUTs, overwrites, DELETEs and reads through the cache, and the
file system is then unmounted: whatever was not fsynced is gone (or, with --torn, a random
half of its 4 KiB pages reached the disk), as after the machine lost power. The server is
started again on what is left. With durability "fsync", every acknowledged write must be
there with its bytes, and reach the under store after the sync barrier; a write in flight
at the cut may be there or not, never torn. Objects read through before the cut must read
back exactly as the under store holds them. With durability "none", acknowledged writes
may be lost, but nothing the server answers may be torn.

Needs Debian's python3-fusepy (installed by scripts/install-deps.sh), fusermount and a
usable /dev/fuse; skipped with the reason otherwise, like the s3fs client test."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from conftest import FUSERMOUNT, _die_with_parent, _LIVE_PROCS, fuse_problem, metric, unique_bucket_name

pytestmark = [pytest.mark.reservoir_only, pytest.mark.slow]

TOOL = Path(__file__).resolve().parents[1] / "tools" / "powercut_fs.py"
FUSE_PYTHON = "/usr/bin/python3"  # Debian's python, which python3-fusepy installs into
MiB = 1 << 20


def _fuse_problem() -> str | None:
    why = fuse_problem()
    if why:
        return why
    if subprocess.run([FUSE_PYTHON, "-c", "import fusepy"], capture_output=True).returncode != 0:
        return "python3-fusepy is not installed (scripts/install-deps.sh installs it)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _needs_fuse():
    why = _fuse_problem()
    if why:
        pytest.skip(why)


class PowercutMount:
    """powercut_fs.py mounted at `mount` over `backing`; cut() unmounts it (the power cut)."""

    def __init__(self, root: Path, torn_seed: int | None):
        self.backing = root / "disk"
        self.mount = root / "mnt"
        self.backing.mkdir()
        self.mount.mkdir()
        self.log = root / "powercut.log"
        argv = [FUSE_PYTHON, str(TOOL), str(self.backing), str(self.mount)]
        if torn_seed is not None:
            argv += ["--torn", str(torn_seed)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(self.log, "wb"),
                                     text=True, preexec_fn=_die_with_parent)
        _LIVE_PROCS.append(self.proc)
        line = self.proc.stdout.readline().strip()
        assert line == "mounted", f"powercut_fs did not mount: {line!r}\n{self.log.read_text()}"

    def cut(self) -> str:
        subprocess.run([FUSERMOUNT, "-u", str(self.mount)], check=True, timeout=30)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, self.log.read_text()
        return out.strip()

    def close(self):
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                subprocess.run([FUSERMOUNT, "-u", "-z", str(self.mount)], timeout=30)
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=10)
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def powercut(tmp_path):
    mounts: list[PowercutMount] = []

    def make(torn_seed: int | None = None) -> PowercutMount:
        m = PowercutMount(tmp_path, torn_seed)
        mounts.append(m)
        return m

    yield make
    for m in mounts:
        m.close()


def _body(key: str, n: int) -> bytes:
    """Write n of a key: sizes from empty to spilled files, kept in the index or not."""
    rnd = random.Random(f"{key}/{n}")
    size = rnd.choice([0, rnd.randint(1, 4096), 20 * 1024, 100 * 1024, 300 * 1024, int(1.5 * MiB)])
    return rnd.randbytes(size)


READ_THROUGH = {f"ufs/{i:02d}": random.Random(i).randbytes(random.Random(i).choice([5000, 300 * 1024, 3 * MiB]))
                for i in range(12)}


def _scenario(srv, bucket: str, keys: int, kill_after: int):
    """Each key is one thread's sequence: PUT, PUT again, maybe DELETE, in order. The
    server is killed once `kill_after` operations were acknowledged. Returns, per key,
    the states it may be in after the cut: the last acknowledged one, and the one in
    flight at the kill (None = absent)."""
    client = srv.client(max_pool=16, read_timeout=30)
    lock = threading.Lock()
    acks = [0]
    killed = threading.Event()
    allowed: dict[str, list[bytes | None]] = {}

    def ack():
        with lock:
            acks[0] += 1
            if acks[0] >= kill_after and not killed.is_set():
                killed.set()
                srv.kill()

    def run(i: int):
        key = f"obj/{i:03d}"
        ops = [("put", _body(key, 1)), ("put", _body(key, 2))] + ([("delete", None)] if i % 4 == 0 else [])
        last: bytes | None = None
        for op, data in ops:
            try:
                if op == "put":
                    client.put_object(Bucket=bucket, Key=key, Body=data)
                else:
                    client.delete_object(Bucket=bucket, Key=key)
            except (ClientError, BotoCoreError, OSError):
                allowed[key] = [last, data]  # the op in flight may or may not have landed
                return
            last = data
            ack()
        allowed[key] = [last]

    def read(key: str):
        try:
            got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert got == READ_THROUGH[key], f"{key} read through wrong before the cut"
        except (ClientError, BotoCoreError, OSError):
            pass  # the kill

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(read, k) for k in READ_THROUGH]
        futures += [pool.submit(run, i) for i in range(keys)]
        for f in futures:
            f.result()
    assert killed.is_set(), "the server was never killed"
    return allowed


def _check(srv, bucket: str, allowed: dict[str, list[bytes | None]], durable: bool):
    c = srv.client()
    bad, lost = [], 0
    for key, states in sorted(allowed.items()):
        try:
            got: bytes | None = c.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            if e.response["Error"]["Code"] != "NoSuchKey":
                bad.append((key, e.response["Error"]["Code"]))
                continue
            got = None
        if got in states:
            continue
        if not durable and (got is None or any(got == _body(key, n) for n in (1, 2))):
            lost += 1  # durability "none": an older state or nothing, never torn bytes
            continue
        bad.append((key, f"{'absent' if got is None else len(got)} vs {[None if s is None else len(s) for s in states]}"))
    assert not bad, f"{len(bad)} keys wrong after the power cut: {bad[:10]}"
    for key, data in READ_THROUGH.items():
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data, f"{key} read through torn"
    return lost


def _start_on_mount(reservoir_factory, mount: PowercutMount, durability: str):
    srv = reservoir_factory(start=False, delay="1h",
                            server_options={"index_journal_bytes": "1MiB", "durability": durability})
    srv.data_dir = mount.mount / "data"
    bucket = unique_bucket_name("cut")
    (srv.ufs_dir / bucket / "ufs").mkdir(parents=True)
    for key, data in READ_THROUGH.items():
        (srv.ufs_dir / bucket / key).write_bytes(data)
    srv.start()
    return srv, bucket


def _pages_read_then_a_synced_write(reservoir_factory, mount: PowercutMount):
    """A server on the mount that has read every READ_THROUGH object (pages written
    without an fsync), then acknowledged a PUT (a synced write that makes their records
    durable)."""
    srv, bucket = _start_on_mount(reservoir_factory, mount, "fsync")
    c = srv.client()
    for key, data in READ_THROUGH.items():
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    c.put_object(Bucket=bucket, Key="synced", Body=b"a synced write after the pages")
    return srv, bucket


@pytest.mark.parametrize("torn", [None, 7], ids=["unsynced-lost", "unsynced-torn"])
def test_acknowledged_writes_survive_a_power_cut(reservoir_factory, powercut, torn):
    mount = powercut(torn)
    srv, bucket = _start_on_mount(reservoir_factory, mount, "fsync")
    allowed = _scenario(srv, bucket, keys=120, kill_after=150)
    assert not srv.alive()
    print(mount.cut())
    srv.data_dir = mount.backing / "data"  # what the disk held at the cut
    srv.start()
    _check(srv, bucket, allowed, durable=True)
    assert metric(srv.metrics(), "reservoir_cache_objects_lost_at_start") == 0
    # After the barrier the under store holds the same.
    srv.restart(delay="0s")
    srv.sync(bucket + "/", timeout=120)
    c = srv.client()
    for key in allowed:
        try:
            body = c.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            body = None
        on_disk = srv.ufs_path(bucket, key).read_bytes() if srv.ufs_path(bucket, key).is_file() else None
        assert on_disk == body, key


def test_pages_read_through_before_a_power_cut_are_never_served_torn(reservoir_factory, powercut):
    """Pages of objects read through are written without an fsync; a PUT after them
    makes their records durable. Without the start's check against each page's CRC32C
    (or the sync point covering them), the restarted server served short or torn pages."""
    mount = powercut(3)
    srv, bucket = _pages_read_then_a_synced_write(reservoir_factory, mount)
    srv.kill()
    print(mount.cut())
    srv.data_dir = mount.backing / "data"
    srv.start()
    log = srv.log_path.read_text()
    assert "may not have survived the last stop" in log and " pages and 0 cached objects dropped" in log, log[-3000:]
    _check(srv, bucket, {"synced": [b"a synced write after the pages"]}, durable=True)


def test_a_start_after_a_kill_syncs_the_pages_it_checked_before_vouching_for_them(reservoir_factory, powercut):
    """A kill -9 leaves pages read through only in the page cache: the next start checks
    them (whole, so kept) and writes a sync point that covers them. It must fdatasync them
    first, or a power cut soon after leaves torn pages that no later start checks."""
    mount = powercut(3)
    srv, bucket = _pages_read_then_a_synced_write(reservoir_factory, mount)
    srv.kill()
    srv.start()  # on the same file system: the unsynced pages are still whole there
    log = srv.log_path.read_text()
    assert "may not have survived the last stop" in log and " 0 pages and 0 cached objects dropped" in log, log[-3000:]
    srv.kill()  # before its next sync point (every 5 s)
    print(mount.cut())
    srv.data_dir = mount.backing / "data"
    srv.start()
    c = srv.client()
    for key, data in READ_THROUGH.items():
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key


def test_pages_covered_by_a_sync_point_are_kept(reservoir_factory, powercut):
    """The sync point (every 5 s) fsyncs the pages written since the last one: a start
    after a later power cut keeps them without reading them again."""
    mount = powercut()
    srv, bucket = _start_on_mount(reservoir_factory, mount, "fsync")
    c = srv.client()
    for key, data in READ_THROUGH.items():
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    time.sleep(6)
    srv.kill()
    mount.cut()
    srv.data_dir = mount.backing / "data"
    srv.start()
    assert "may not have survived the last stop" not in srv.log_path.read_text()  # nothing to check
    c = srv.client()
    for key, data in READ_THROUGH.items():
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key


@pytest.mark.parametrize("seed", [3, 11])
def test_durability_none_loses_writes_but_never_serves_torn_data(reservoir_factory, powercut, seed):
    mount = powercut(seed)
    srv, bucket = _start_on_mount(reservoir_factory, mount, "none")
    allowed = _scenario(srv, bucket, keys=120, kill_after=150)
    print(mount.cut())
    srv.data_dir = mount.backing / "data"
    srv.start()
    lost = _check(srv, bucket, allowed, durable=False)
    forgotten = srv.log_path.read_text().count("did not survive the stop")  # one error per object
    assert metric(srv.metrics(), "reservoir_cache_objects_lost_at_start") == forgotten
    print(f"{lost} keys in an older state or gone (allowed with durability none)")
