"""The cache's disk really runs out of space (ENOSPC from a small tmpfs, not a
quota): a PUT that does not fit fails with 503 SlowDown while its body is still
arriving (the body is written on the blocking pool while the next MiB is read),
leaves nothing behind, and everything acknowledged before stays readable."""

from __future__ import annotations

import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import ReservoirServer, err_status

MiB = 1 << 20


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_put_that_runs_out_of_disk_fails_cleanly(tmp_path, small_disk):
    ufs = tmp_path / "ufs"
    ufs.mkdir()
    # The tier's quota is far above the disk: only the disk itself says no.
    srv = ReservoirServer(tmp_path / "srv", mounts=[{"path": "/", "ufs": f"file://{ufs}", "delay": "1h"}],
                          extra_toml=f"[[tier]]\nmedium = \"ssd\"\npath = \"{small_disk}\"\nquota = \"1GiB\"\n")
    srv.start()
    try:
        s3 = srv.client()  # no retries
        s3.create_bucket(Bucket="full")
        kept = {f"k{i}": os.urandom(2 * MiB) for i in range(2)}
        for k, v in kept.items():
            s3.put_object(Bucket="full", Key=k, Body=v)
        small = os.urandom(10 * 1024)
        s3.put_object(Bucket="full", Key="small-before", Body=small)

        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket="full", Key="too-big", Body=os.urandom(24 * MiB))
        assert err_status(e.value) == 503
        assert e.value.response["Error"]["Code"] == "SlowDown"
        assert "out of space" in e.value.response["Error"]["Message"], "the disk, not a quota, said no"

        # Nothing of the failed PUT is left on the disk or in the namespace.
        leftovers = [p for p in (small_disk / "objects" / "tmp").iterdir()]
        assert leftovers == []
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket="full", Key="too-big")
        assert err_status(e.value) == 404
        # What was acknowledged before is intact, and the server goes on.
        for k, v in kept.items():
            assert s3.get_object(Bucket="full", Key=k)["Body"].read() == v
        assert s3.get_object(Bucket="full", Key="small-before")["Body"].read() == small
        s3.put_object(Bucket="full", Key="after", Body=os.urandom(MiB))
        srv.sync("full/")
        for k, v in kept.items():
            assert (ufs / "full" / k).read_bytes() == v
    finally:
        srv.stop()
