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
    """moto_server + slow proxy + reservoir in a temporary directory (bench/burst.py):
    a Backend and a Reservoir with a /burst mount on it."""

    def __init__(self, *, put_rps: int = 50, latency_ms: float = 30, persist_ops: float = 0,
                 concurrency: int = 16, durability: str = "fsync", workdir: str | None = None):
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="reservoir-bench-"))
        backend = Backend(self.dir, latency_ms=latency_ms, put_rps=put_rps, buckets=())
        self.moto_port, self.proxy_port, self.control_port = backend.moto_port, backend.proxy_port, backend.control_port
        self.rsv = Reservoir(self.dir, durability=durability, mounts=f"""[[mount]]
path = "/burst"
ufs = "s3://burst/"
endpoint = "{backend.proxy_url}"
access_key = "moto"
secret_key = "moto"
persist = {{ concurrency = {concurrency}, max_ops_per_sec = {persist_ops} }}
""")
        self.s3_port, self.admin_port = self.rsv.s3_port, self.rsv.admin_port

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
        return self.rsv.sync(prefix, timeout)

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10).read().decode()


# ---------------------------------------------------------------- used by the
# `reservoir bench` experiments (bench/exp_*.py): pieces started one by one.

def new_dir(prefix: str = "reservoir-bench-") -> Path:
    """A fresh directory on the disk the cache uses (build/bench/tmp, not tmpfs)."""
    base = ROOT / "build" / "bench" / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


class Backend:
    """moto_server behind the slow proxy: S3 over the internet, on 127.0.0.1."""

    def __init__(self, workdir: Path, *, latency_ms: float = 30, put_rps: int = 0, buckets=("bench",)):
        self.moto_port, self.proxy_port, self.control_port = free_port(), free_port(), free_port()
        moto = shutil.which("moto_server") or "moto_server"
        _spawn([moto, "-H", "127.0.0.1", "-p", str(self.moto_port)], workdir / "moto.log")
        _wait_http(f"http://127.0.0.1:{self.moto_port}/")
        _spawn([sys.executable, str(PROXY), "--listen", f"127.0.0.1:{self.proxy_port}",
                "--backend", f"127.0.0.1:{self.moto_port}", "--control-port", str(self.control_port),
                "--latency-ms", str(latency_ms), "--max-put-rps", str(put_rps)], workdir / "proxy.log")
        _wait_http(f"http://127.0.0.1:{self.control_port}/stats")
        for b in buckets:
            req = urllib.request.Request(f"http://127.0.0.1:{self.moto_port}/{b}", method="PUT")
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except urllib.error.HTTPError:
                pass

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def mount(self, path: str, ufs_path: str, persist_ops: int | None = None) -> str:
        """A [[mount]] block: Reservoir's `path` on s3://UFS_PATH of this backend,
        drained by 16 uploaders at up to persist_ops objects/s (None: the defaults)."""
        block = (f'[[mount]]\npath = "{path}"\nufs = "s3://{ufs_path}"\nendpoint = "{self.proxy_url}"\n'
                 'access_key = "moto"\nsecret_key = "moto"\n')
        if persist_ops is not None:
            block += f"persist = {{ concurrency = 16, max_ops_per_sec = {persist_ops} }}\n"
        return block


class Reservoir:
    """One `reservoir serve`. `mounts` are extra [[mount]] TOML blocks; without
    them "/" is a file:// under store in the work directory."""

    def __init__(self, workdir: Path, *, durability: str = "fsync", mounts: str = "", name: str = "reservoir"):
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
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
{mounts}
""")
        self.proc = _spawn([str(RESERVOIR_BIN), "serve", "--config", str(cfg)], self.dir / "reservoir.log")
        _wait_http(f"http://127.0.0.1:{self.admin_port}/health")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def sync(self, prefix: str, timeout: int = 900) -> dict:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}/admin/v1/sync?prefix={prefix}&wait=true&timeout={timeout}",
            method="POST", headers={"Authorization": f"Bearer {SECRET_KEY}"})
        return json.loads(urllib.request.urlopen(req, timeout=timeout + 30).read())

    def vmhwm_mb(self) -> float:
        """Peak resident set size of the server so far (VmHWM), in MB."""
        return proc_status_kb(self.proc.pid, "VmHWM") / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def proc_status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Nginx:
    """Debian's nginx on 127.0.0.1: static files under root/ and WebDAV PUT/DELETE
    (the core http_dav module), the physical-limit reference for small objects."""

    def __init__(self, workdir: Path, workers: str = "auto"):
        self.dir = workdir / "nginx"
        (self.dir / "www").mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.port = free_port()
        conf = self.dir / "nginx.conf"
        d = self.dir
        conf.write_text(f"""
daemon off;
user root root;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_max_body_size 0;
  client_body_buffer_size 1m;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    root {d}/www;
    location / {{
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }}
  }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = _spawn([nginx, "-c", str(conf), "-p", str(d), "-e", str(d / "error.log")], d / "stdout.log")
        _wait_http(self.url + "/")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def bench(args: list, json_path: Path, check: bool = True, timeout: float = 3600) -> dict:
    """Runs `reservoir bench ... --json json_path` and returns the JSON."""
    cmd = [str(RESERVOIR_BIN), "bench", *[str(a) for a in args], "--no-progress", "--json", str(json_path)]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    sys.stderr.write(p.stdout)
    if p.returncode not in (0, 1) or not json_path.exists():
        raise RuntimeError(f"reservoir bench failed ({p.returncode}): {p.stderr[-2000:]}")
    if check and p.returncode == 1:
        print(f"reservoir bench reported errors: {p.stderr[-500:]}", file=sys.stderr)
    return json.loads(json_path.read_text())


def reservoir_creds() -> list:
    return ["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY]
