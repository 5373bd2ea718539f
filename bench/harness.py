"""Processes for the benchmarks: moto_server (a real S3 server), the slow-backend
proxy (tests/tools/slow_s3_proxy.py) in front of it, and a `reservoir serve`.
Everything listens on 127.0.0.1 on free ports and is stopped by stop_all()."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESERVOIR_BIN = Path(os.environ.get("RESERVOIR_BIN", ROOT / "build" / "release" / "reservoir"))
PROXY = ROOT / "tests" / "tools" / "slow_s3_proxy.py"
ACCESS_KEY, SECRET_KEY = "bench", "bench-secret"
_procs: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(cmd, log: Path, env=None) -> subprocess.Popen:
    p = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    _procs.append(p)
    return p


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stop_all() -> None:
    for p in _procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in _procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    _procs.clear()


atexit.register(stop_all)


class Env:
    """moto_server + slow proxy + reservoir in a temporary directory."""

    def __init__(self, *, put_rps: int = 50, latency_ms: float = 30, persist_ops: float = 0,
                 concurrency: int = 16, durability: str = "fsync", workdir: str | None = None):
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="reservoir-bench-"))
        self.moto_port, self.proxy_port, self.control_port = free_port(), free_port(), free_port()
        moto = shutil.which("moto_server") or "moto_server"
        _spawn([moto, "-H", "127.0.0.1", "-p", str(self.moto_port)], self.dir / "moto.log")
        _wait_http(f"http://127.0.0.1:{self.moto_port}/")
        _spawn([sys.executable, str(PROXY), "--listen", f"127.0.0.1:{self.proxy_port}",
                "--backend", f"127.0.0.1:{self.moto_port}", "--control-port", str(self.control_port),
                "--latency-ms", str(latency_ms), "--max-put-rps", str(put_rps)], self.dir / "proxy.log")
        _wait_http(f"http://127.0.0.1:{self.control_port}/stats")
        self.s3_port, self.admin_port = free_port(), free_port()
        cfg = self.dir / "reservoir.toml"
        cfg.write_text(f"""
[server]
s3_listen = "127.0.0.1:{self.s3_port}"
admin_listen = "127.0.0.1:{self.admin_port}"
data_dir = "{self.dir}/data"
durability = "{durability}"
log_level = "warn"
[auth]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
[[mount]]
path = "/"
ufs = "file://{self.dir}/ufs"
[[mount]]
path = "/burst"
ufs = "s3://burst/"
endpoint = "http://127.0.0.1:{self.proxy_port}"
access_key = "moto"
secret_key = "moto"
persist = {{ concurrency = {concurrency}, max_ops_per_sec = {persist_ops} }}
""")
        _spawn([str(RESERVOIR_BIN), "serve", "--config", str(cfg)], self.dir / "reservoir.log")
        _wait_http(f"http://127.0.0.1:{self.admin_port}/health")

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def reservoir_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def control(self, method: str, path: str) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", method=method)
        return json.loads(urllib.request.urlopen(req, timeout=10).read() or b"{}")

    def sync(self, prefix: str, timeout: int = 600) -> dict:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}/admin/v1/sync?prefix={prefix}&wait=true&timeout={timeout}",
            method="POST", headers={"Authorization": f"Bearer {SECRET_KEY}"})
        return json.loads(urllib.request.urlopen(req, timeout=timeout + 30).read())

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10).read().decode()
