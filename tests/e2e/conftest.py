"""Shared fixtures and helpers for Reservoir's end-to-end tests.

The suite runs against a real `reservoir serve` process (default) or, with
RESERVOIR_E2E_TARGET=moto, against `moto_server`, which stands in for real S3
so that the S3-semantics expectations themselves can be checked.

Markers:
  reservoir_only  - tests of Reservoir-specific behaviour (persist state header,
                    under-store files, write modes, crash recovery, 501s for
                    unsupported operations); skipped on moto.
  moto_deviates   - tests of documented S3 behaviour that moto does not
                    implement; skipped on moto.

All traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import botocore
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

TARGET = os.environ.get("RESERVOIR_E2E_TARGET", "reservoir").strip().lower()
if TARGET not in ("reservoir", "moto"):
    raise RuntimeError(f"RESERVOIR_E2E_TARGET must be 'reservoir' or 'moto', not {TARGET!r}")
IS_MOTO = TARGET == "moto"
IS_RESERVOIR = not IS_MOTO

REPO_ROOT = Path(__file__).resolve().parents[2]
RESERVOIR_BIN = Path(os.environ.get("RESERVOIR_BIN", REPO_ROOT / "build" / "release" / "reservoir"))

ACCESS_KEY = "testkey"
SECRET_KEY = "testsecret"
REGION = "us-east-1"
HOST = "127.0.0.1"
MiB = 1024 * 1024

PERSIST_STATE_HEADER = "x-reservoir-persist-state"
PERSIST_STATES = {"dirty", "persisting", "persisted", "parked", "transient"}

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

BOTO3_VERSION = tuple(int(x) for x in boto3.__version__.split(".")[:2])


# --------------------------------------------------------------------------
# pytest hooks: markers and skipping
# --------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "reservoir_only: Reservoir-specific behaviour; skipped on moto")
    config.addinivalue_line("markers", "moto_deviates(reason): documented S3 behaviour moto lacks; skipped on moto")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_report_header(config):
    where = RESERVOIR_BIN if IS_RESERVOIR else shutil.which("moto_server")
    return [f"reservoir e2e: target={TARGET} ({where}); python {sys.version.split()[0]} "
            f"({sys.executable}); boto3 {boto3.__version__}; botocore {botocore.__version__}"]


def pytest_collection_modifyitems(config, items):
    if not IS_MOTO:
        return
    for item in items:
        if item.get_closest_marker("reservoir_only"):
            item.add_marker(pytest.mark.skip(reason="reservoir-only behaviour (target is moto)"))
            continue
        m = item.get_closest_marker("moto_deviates")
        if m:
            why = m.kwargs.get("reason") or (m.args[0] if m.args else "moto deviates from S3 here")
            item.add_marker(pytest.mark.skip(reason=f"moto deviates: {why}"))


# --------------------------------------------------------------------------
# Process management
# --------------------------------------------------------------------------

_LIVE_PROCS: list[subprocess.Popen] = []


def _kill_leftovers():
    for p in _LIVE_PROCS:
        if p.poll() is None:
            with contextlib.suppress(Exception):
                p.kill()
                p.wait(5)


atexit.register(_kill_leftovers)


def _sigterm_to_interrupt(signum, frame):  # let pytest run finalizers on SIGTERM
    raise KeyboardInterrupt(f"signal {signum}")


with contextlib.suppress(ValueError):  # only possible from the main thread
    signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test process dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# Every Reservoir server runs with tests/tools/close_check.cc preloaded when the build
# has it: a close() of a descriptor that is not open (a double close, which can close a
# file another thread just opened) is logged to the server's double-close.log, and the
# test during which a log appears fails with it (close_check_failures).
CLOSE_CHECK_LIB = RESERVOIR_BIN.parent / "libclose_check.so"
_CLOSE_LOGS: dict[Path, bool] = {}  # log path -> already reported


def close_check_env(log: Path) -> dict:
    """The environment of a server process that reports double closes to `log`."""
    env = dict(os.environ)
    if CLOSE_CHECK_LIB.exists():
        env["LD_PRELOAD"] = " ".join(x for x in (str(CLOSE_CHECK_LIB), env.get("LD_PRELOAD", "")) if x)
        env["RESERVOIR_CLOSE_CHECK_LOG"] = str(log)
        _CLOSE_LOGS.setdefault(log, False)
    return env


def close_check_failures() -> str:
    """The double closes logged since the last call (empty when none)."""
    out = []
    for log, reported in _CLOSE_LOGS.items():
        if not reported and log.exists():
            _CLOSE_LOGS[log] = True
            out.append(f"{log}:\n{log.read_text(errors='replace')}")
    return "\n".join(out)


FUSERMOUNT = shutil.which("fusermount") or shutil.which("fusermount3")


def fuse_problem() -> str | None:
    """Why FUSE mounts cannot be tested here (None if they can): fusermount, /dev/fuse."""
    if FUSERMOUNT is None:
        return "fusermount is not installed (apt-get install fuse)"
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)
    except OSError as e:
        return f"/dev/fuse is unusable here: {e}"
    os.close(fd)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 60) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def http_get(url: str, timeout: float = 5.0):
    """Plain GET; returns (status, body) or raises OSError when unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def stop_process(p: subprocess.Popen | None, timeout: float = 20.0) -> int | None:
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code (None if never started)."""
    if p is None:
        return None
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    return p.returncode


def run_cli(argv: list, env: dict, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a client command; with check, a non-zero exit fails the test showing its output."""
    argv = [str(a) for a in argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(argv)} -> exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}",
                    pytrace=False)
    return r


def toml_str(s: str) -> str:
    return json.dumps(str(s))  # JSON string escaping is valid TOML basic-string escaping


def toml_value(v) -> str:
    """A TOML value: str quoted, bool, int, float, list, dict as an inline table."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return toml_str(v)


# mount keys that render_config writes itself; any other key of a mount dict is copied
_MOUNT_KEYS_RENDERED = {"path", "ufs", "write_mode", "delay", "concurrency", "persist"}


class ServerError(RuntimeError):
    pass


class _Target:
    """What every test target offers."""
    kind = "?"
    proc: subprocess.Popen | None = None
    log_path: Path
    port: int
    deaths: int = 0  # times the module's server had to be revived

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def client(self, **kw):
        return make_client(self.endpoint, **kw)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 60) -> str:
        return _tail(self.log_path, n)

    def _spawn(self, argv, env=None):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n===== {' '.join(map(str, argv))} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent)
        log.close()
        _LIVE_PROCS.append(self.proc)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Graceful stop (SIGTERM), SIGKILL after `timeout`. Returns the exit code."""
        return stop_process(self.proc, timeout)

    def kill(self) -> None:
        """Crash: SIGKILL, no chance to clean up."""
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)


class MotoServer(_Target):
    kind = "moto"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.log_path = self.root / "moto.log"
        self.port = 0

    def start(self, timeout: float = 30.0, keep_ports: bool = False):
        exe = shutil.which("moto_server") or "/root/.pyenv/shims/moto_server"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        last = None
        for attempt in range(3):
            if not (keep_ports and attempt == 0 and self.port):
                self.port = free_port()
            self._spawn([exe, "-H", HOST, "-p", self.port], env=env)
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    last = f"moto_server exited with {self.proc.returncode}"
                    break
                try:
                    http_get(self.endpoint + "/moto-api/", timeout=2)
                    return self
                except OSError:
                    time.sleep(0.2)
            else:
                self.kill()
                last = "moto_server did not become ready"
        raise ServerError(f"{last}\n{self.log_tail()}")


class ReservoirServer(_Target):
    """One `reservoir serve` process with its own data dir and file:// under store."""
    kind = "reservoir"

    def __init__(self, root: Path, *, write_mode: str = "write-back", delay: str = "0s",
                 concurrency: int = 4, policies: list[dict] | None = None,
                 mounts: list[dict] | None = None, ufs_dir: Path | None = None,
                 allow_anonymous: bool = False, extra_toml: str = "",
                 server_options: dict | None = None, tls: tuple | None = None):
        """server_options: more [server] keys, e.g. {"header_timeout": "2s",
        "max_connections": 8, "domains": ["s3.localhost", "localhost"]} (str values are
        quoted, int/bool/list written as TOML).
        mounts: [[mount]] tables instead of the default "/" on file://ufs_dir: dicts with
        path, ufs, optional write_mode, delay, concurrency (defaults: the server's), an
        optional "persist" dict of more persist keys (max_ops_per_sec, ...), and any other
        mount key as is (endpoint, access_key, secret_key, on_full, dirty_max_objects, ...).
        tls: (cert_pem, key_pem) paths: also listen for HTTPS on a free port (tls_endpoint)."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.ufs_dir = Path(ufs_dir) if ufs_dir else self.root / "ufs"
        self.ufs_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.root / "reservoir.toml"
        self.log_path = self.root / "reservoir.log"
        self.write_mode = write_mode
        self.delay = delay
        self.concurrency = concurrency
        self.policies = policies or []
        self.mounts = mounts
        self.allow_anonymous = allow_anonymous
        self.extra_toml = extra_toml
        self.server_options = dict(server_options or {})
        self.tls = tuple(tls) if tls else None
        self.port = 0
        self.admin_port = 0
        self.tls_port = 0

    @property
    def admin_endpoint(self) -> str:
        return f"http://{HOST}:{self.admin_port}"

    @property
    def tls_endpoint(self) -> str:
        return f"https://{HOST}:{self.tls_port}"

    def ufs_path(self, bucket: str, key: str = "") -> Path:
        return self.ufs_dir / bucket / key if key else self.ufs_dir / bucket

    def render_config(self) -> str:
        out = [
            "[server]",
            f"s3_listen = {toml_str(f'{HOST}:{self.port}')}",
            f"admin_listen = {toml_str(f'{HOST}:{self.admin_port}')}",
            f"data_dir = {toml_str(self.data_dir)}",
        ]
        if self.tls:
            out += [f"tls_listen = {toml_str(f'{HOST}:{self.tls_port}')}",
                    f"tls_cert = {toml_str(self.tls[0])}",
                    f"tls_key = {toml_str(self.tls[1])}"]
        for k, v in self.server_options.items():
            val = ("true" if v else "false") if isinstance(v, bool) else \
                str(v) if isinstance(v, int) else \
                toml_value(v) if isinstance(v, (list, tuple)) else toml_str(v)
            out.append(f"{k} = {val}")
        out += [
            "",
            "[auth]",
            f"access_key = {toml_str(ACCESS_KEY)}",
            f"secret_key = {toml_str(SECRET_KEY)}",
            f"allow_anonymous = {'true' if self.allow_anonymous else 'false'}",
            "",
        ]
        mounts = self.mounts or [{"path": "/", "ufs": f"file://{self.ufs_dir}",
                                  "write_mode": self.write_mode}]
        for m in mounts:
            out.append("[[mount]]")
            out.append(f"path = {toml_str(m['path'])}")
            out.append(f"ufs = {toml_str(m['ufs'])}")
            out.append(f"write_mode = {toml_str(m.get('write_mode', self.write_mode))}")
            delay = m.get("delay", self.delay)
            conc = m.get("concurrency", self.concurrency)
            persist = {"delay": delay, "concurrency": int(conc), **dict(m.get("persist") or {})}
            out.append(f"persist = {toml_value(persist)}")
            # any other mount key as is: endpoint, access_key, on_full, dirty_max_objects, ...
            for k, v in m.items():
                if k not in _MOUNT_KEYS_RENDERED:
                    out.append(f"{k} = {toml_value(v)}")
            out.append("")
        for p in self.policies:
            out.append("[[policy]]")
            for k, v in p.items():
                out.append(f"{k} = {toml_str(v)}")
            out.append("")
        if self.extra_toml:
            out.append(self.extra_toml)
        return "\n".join(out) + "\n"

    def start(self, timeout: float = 60.0, keep_ports: bool = False):
        """Start (again) on the same data dir and under store; new free ports unless
        keep_ports, which tries the previous ones first."""
        if not RESERVOIR_BIN.exists():
            raise ServerError(f"reservoir binary not found at {RESERVOIR_BIN} "
                              f"(build it with `make build`, or set RESERVOIR_BIN)")
        last = None
        for attempt in range(3):  # a picked port can be taken in between: retry
            if not (keep_ports and attempt == 0 and self.port and self.admin_port
                    and (self.tls_port or not self.tls)):
                self.port, self.admin_port = free_port(), free_port()
                while self.admin_port == self.port:
                    self.admin_port = free_port()
                if self.tls:
                    self.tls_port = free_port()
                    while self.tls_port in (self.port, self.admin_port):
                        self.tls_port = free_port()
            self.config_path.write_text(self.render_config())
            self._spawn([RESERVOIR_BIN, "serve", "--config", self.config_path],
                        env=close_check_env(self.root / "double-close.log"))
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    last = f"reservoir exited with code {self.proc.returncode} during start-up"
                    break
                try:
                    status, _ = http_get(self.admin_endpoint + "/health", timeout=2)
                    if status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            else:
                self.kill()
                last = f"reservoir did not answer 200 on /health within {timeout}s"
        raise ServerError(f"{last}\nconfig:\n{self.render_config()}\nlog tail:\n{self.log_tail()}")

    def restart(self, **changes):
        """Graceful stop, optionally change settings (e.g. delay), start on the same dirs."""
        self.stop()
        for k, v in changes.items():
            setattr(self, k, v)
        return self.start()

    def sync(self, prefix: str, timeout: int = 60) -> dict:
        """The admin barrier: returns once every acknowledged write under prefix is persisted."""
        q = "prefix=" + urllib.parse.quote(prefix, safe="/") + f"&wait=true&timeout={int(timeout)}"
        req = urllib.request.Request(self.admin_endpoint + "/admin/v1/sync?" + q, data=b"",
                                     method="POST",
                                     headers={"Authorization": f"Bearer {SECRET_KEY}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout + 30) as r:
                body = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raise AssertionError(f"sync {prefix!r} -> HTTP {e.code}: {e.read()[:500]!r}") from e
        assert status == 200, (status, body)
        doc = json.loads(body)
        assert doc.get("done") is True, f"sync {prefix!r} not done: {doc}"
        assert doc.get("pending") == 0, f"sync {prefix!r}: {doc}"
        return doc

    # ---- admin API helpers ------------------------------------------------

    def admin(self, method: str, path: str, timeout: float = 30) -> tuple[int, bytes]:
        """One admin API call with the bearer token; returns (status, body)."""
        req = urllib.request.Request(self.admin_endpoint + path, method=method,
                                     data=b"" if method == "POST" else None,
                                     headers={"Authorization": f"Bearer {SECRET_KEY}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def persist_status(self, prefix: str = "") -> dict:
        status, body = self.admin("GET", "/admin/v1/persist-status?prefix="
                                  + urllib.parse.quote(prefix, safe="/"))
        assert status == 200, (status, body[:500])
        return json.loads(body)

    def mount_status(self, mount: str, prefix: str = "") -> dict:
        """persist-status's entry for one mount path (e.g. "/wb")."""
        doc = self.persist_status(prefix)
        for m in doc["mounts"]:
            if m["mount"] == mount:
                return m
        raise AssertionError(f"no mount {mount!r} in persist-status: {doc}")

    def metrics_text(self) -> str:
        status, body = http_get(self.admin_endpoint + "/metrics", timeout=10)
        assert status == 200, (status, body[:300])
        return body.decode()

    def metrics(self) -> dict:
        """/metrics parsed: {(name, frozenset of label pairs): value}."""
        return parse_prometheus(self.metrics_text())

    def cli(self, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `reservoir ARGS --admin URL --secret KEY` (sync, persist-status, retry-parked)."""
        argv = [str(RESERVOIR_BIN), *map(str, args), "--admin", self.admin_endpoint,
                "--secret", SECRET_KEY]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


def parse_prometheus(text: str) -> dict:
    """Prometheus text format -> {(name, frozenset((label, value), ...)): float}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, frozenset()
        if "{" in head:
            name, _, rest = head.partition("{")
            pairs = []
            for part in rest.rstrip("}").split(","):
                if part:
                    k, _, v = part.partition("=")
                    pairs.append((k.strip(), v.strip().strip('"')))
            labels = frozenset(pairs)
        out[(name, labels)] = float(value)
    return out


def metric(parsed: dict, name: str, **labels) -> float | None:
    """The value of one series of parse_prometheus()'s result (labels must all match;
    the series may carry more), or None if absent."""
    want = {(k, str(v)) for k, v in labels.items()}
    for (n, ls), v in parsed.items():
        if n == name and want <= ls:
            return v
    return None


def start_target(root: Path, **kw) -> _Target:
    if IS_MOTO:
        return MotoServer(root).start()
    return ReservoirServer(root, **kw).start()


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

def make_client(endpoint: str, *, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
                addressing_style: str = "path", max_pool: int = 10, read_timeout: float = 120,
                signature_version: str = "s3v4", verify=None, **config_kw):
    """verify: for https endpoints, a CA bundle path (or False); None = botocore's default."""
    cfg = Config(signature_version=signature_version, region_name=REGION,
                 s3={"addressing_style": addressing_style},
                 retries={"total_max_attempts": 1, "mode": "standard"},
                 connect_timeout=10, read_timeout=read_timeout,
                 max_pool_connections=max_pool, **config_kw)
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, region_name=REGION, config=cfg, verify=verify)


@contextlib.contextmanager
def extra_headers(client, operation: str, headers: dict):
    """Add (signed) headers to one boto3 operation, e.g. If-None-Match on PutObject
    with boto3 versions that lack the parameter."""
    def add(request, **_):
        for k, v in headers.items():
            request.headers[k] = v
    event = f"before-sign.s3.{operation}"
    client.meta.events.register_first(event, add)
    try:
        yield client
    finally:
        client.meta.events.unregister(event, add)


def err_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def err_status(exc: ClientError) -> int:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


def expect_error(fn, *args, code=None, status=None, **kwargs) -> ClientError:
    """Call fn and assert it fails with the given S3 error code(s) / HTTP status."""
    with pytest.raises(ClientError) as ei:
        fn(*args, **kwargs)
    e = ei.value
    if code is not None:
        codes = (code,) if isinstance(code, str) else tuple(code)
        assert err_code(e) in codes, f"expected {codes}, got {err_code(e)!r}: {e.response}"
    if status is not None:
        statuses = (status,) if isinstance(status, int) else tuple(status)
        assert err_status(e) in statuses, f"expected HTTP {statuses}, got {err_status(e)}: {e.response}"
    return e


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def rand_bytes(n: int, seed=None) -> bytes:
    if seed is None:
        return os.urandom(n)
    return random.Random(seed).randbytes(n)


def headers_of(resp) -> dict:
    return resp["ResponseMetadata"]["HTTPHeaders"]


def persist_state(resp) -> str | None:
    return headers_of(resp).get(PERSIST_STATE_HEADER)


_counter = itertools.count()


def unique_bucket_name(hint: str = "t") -> str:
    hint = "".join(c if c.isalnum() else "-" for c in hint.lower())
    hint = hint.strip("-")[:30].strip("-") or "t"
    return f"{hint}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def empty_bucket(client, bucket: str) -> None:
    with contextlib.suppress(ClientError):
        for up in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            with contextlib.suppress(ClientError):
                client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    token = None
    while True:
        kw = {"Bucket": bucket}
        if token:
            kw["ContinuationToken"] = token
        page = client.list_objects_v2(**kw)
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]


def delete_bucket_quietly(client, bucket: str) -> None:
    with contextlib.suppress(Exception):
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)


# --------------------------------------------------------------------------
# Raw, hand-signed HTTP requests
# --------------------------------------------------------------------------

class _S3RawSigV4(SigV4Auth):
    """SigV4 exactly as S3 wants it: the canonical URI is the path as sent
    (already percent-encoded once), not normalised or re-encoded."""

    def _normalize_url_path(self, path):
        return path or "/"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def quote_key(key: str) -> str:
    return urllib.parse.quote(key, safe="/~")


def sign_headers(method: str, url: str, headers: dict | None = None, body: bytes = b"", *,
                 payload_hash: str | None = None, access_key: str = ACCESS_KEY,
                 secret_key: str = SECRET_KEY, region: str = REGION,
                 amz_date: str | None = None) -> dict:
    """Return the headers (incl. Authorization) that sign this request with SigV4.
    `url` must be percent-encoded as it will be sent. x-amz-content-sha256 defaults to the
    body's hash; pass payload_hash (e.g. 'UNSIGNED-PAYLOAD', or a wrong value) to override."""
    hdrs = dict(headers or {})
    hdrs["X-Amz-Content-SHA256"] = payload_hash if payload_hash is not None else sha256_hex(body)
    req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
    signer = _S3RawSigV4(Credentials(access_key, secret_key), "s3", region)
    if amz_date:
        # botocore takes the timestamp from the clock; shift it by patching the context
        orig = signer._modify_request_before_signing

        def patched(request):
            orig(request)
            request.context["timestamp"] = amz_date
            if "X-Amz-Date" in request.headers:
                del request.headers["X-Amz-Date"]
            request.headers["X-Amz-Date"] = amz_date
        signer._modify_request_before_signing = patched
    signer.add_auth(req)
    return {k: v for k, v in req.headers.items()}


class RawResponse:
    def __init__(self, status: int, reason: str, headers, body: bytes):
        self.status = status
        self.reason = reason
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def error_code(self) -> str | None:
        return xml_error_code(self.body)

    def __repr__(self):
        return f"<RawResponse {self.status} {self.reason} {self.body[:300]!r}>"


def xml_error_code(body: bytes) -> str | None:
    if not body:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    el = root.find("Code")
    if el is None:
        el = root.find(S3_NS + "Code")
    return el.text if el is not None else None


def raw_request(endpoint: str, method: str, path: str, *, query: str = "", headers: dict | None = None,
                body: bytes = b"", sign: bool = True, host_header: str | None = None,
                timeout: float = 30, **sign_kw) -> RawResponse:
    """Send one request with http.client to the endpoint (127.0.0.1). `path` must already be
    percent-encoded. With host_header, the request carries that Host (virtual-hosted style)
    while the TCP connection still goes to the endpoint's address."""
    u = urllib.parse.urlsplit(endpoint)
    target = path + (("?" + query) if query else "")
    hdrs = dict(headers or {})
    if host_header:
        hdrs["Host"] = host_header
    if sign:
        sign_url = f"http://{host_header or u.netloc}{target}"
        hdrs = sign_headers(method, sign_url, hdrs, body, **sign_kw)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return RawResponse(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


def server_answers(target: _Target) -> bool:
    """True if the server still answers a normal signed S3 request."""
    try:
        r = raw_request(target.endpoint, "GET", "/", timeout=15)
    except OSError:
        return False
    return r.status == 200


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    """The module's server: reservoir (write-back, delay 0s) or moto."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    srv = start_target(tmp_path_factory.mktemp(f"srv-{name}"))
    yield srv
    crashed = not srv.alive()
    code = srv.stop()
    if crashed or srv.deaths:
        pytest.fail(f"{srv.kind} server died {srv.deaths + crashed} time(s) during {name} (see the "
                    f"tests blamed above; exit code at the end: {code}); log tail:\n{srv.log_tail()}",
                    pytrace=False)


@pytest.fixture(autouse=True)
def _double_close_watch():
    """Fails the test during which a server logged a double close (see CLOSE_CHECK_LIB);
    one logged while a module's server stopped fails the next test, or the session."""
    found = close_check_failures()
    if found:
        pytest.fail(f"a server closed a descriptor twice (before this test):\n{found}", pytrace=False)
    yield
    found = close_check_failures()
    if found:
        pytest.fail(f"a server closed a descriptor twice during this test:\n{found}", pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    found = close_check_failures()
    if found:
        print(f"\na server closed a descriptor twice at the end of the session:\n{found}")
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _server_watch(request):
    """Blame the test during which the module's server died (with its log), and start it
    again on the same data dir so one crash does not fail the rest of the module."""
    if "server" not in request.fixturenames:
        yield
        return
    srv = request.getfixturevalue("server")
    if not srv.alive():  # died after the previous test's check: revive
        srv.deaths += 1
        srv.start(keep_ports=True)
    yield
    if not srv.alive():
        code = srv.proc.returncode if srv.proc else None
        tail = srv.log_tail()
        srv.deaths += 1
        srv.start(keep_ports=True)
        pytest.fail(f"{srv.kind} server died during this test (exit code {code}); log tail:\n{tail}",
                    pytrace=False)


@pytest.fixture
def s3(server):
    """A boto3 client for the module's server (re-made if a revived server changed ports)."""
    cached = getattr(server, "_s3_client", None)
    if cached is None or cached[0] != server.endpoint:
        cached = server._s3_client = (server.endpoint, server.client())
    return cached[1]


@pytest.fixture
def bucket(s3, request):
    """A fresh, empty bucket for this test, removed afterwards."""
    name = unique_bucket_name(request.node.name.split("[")[0].replace("test_", ""))
    s3.create_bucket(Bucket=name)
    yield name
    delete_bucket_quietly(s3, name)


@pytest.fixture(scope="module")
def reservoir_factory(tmp_path_factory, request):
    """Start extra Reservoir servers with custom settings; all are stopped at module end."""
    started: list[ReservoirServer] = []

    def make(start: bool = True, **kw) -> ReservoirServer:
        if IS_MOTO:
            pytest.skip("needs a reservoir server")
        srv = ReservoirServer(tmp_path_factory.mktemp("rsv"), **kw)
        started.append(srv)
        return srv.start() if start else srv

    yield make
    for srv in started:
        srv.stop()


# --------------------------------------------------------------------------
# A throwaway PKI made with the openssl CLI (one per session) and an HTTPS server
# --------------------------------------------------------------------------

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:s3.localhost,DNS:*.s3.localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""

# the name virtual-hosted HTTPS clients use: <bucket>.s3.localhost matches the server
# certificate's *.s3.localhost (OpenSSL does not match a wildcard directly under a
# one-label name such as *.localhost). Servers that serve it need it in `domains`.
TLS_VHOST_DOMAIN = "s3.localhost"


def _openssl(d: Path, *args):
    out = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"openssl {' '.join(args)}: {out.stderr}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A test CA (ca.pem), a server certificate it signed (server.pem/server.key: SANs
    127.0.0.1, localhost, s3.localhost, *.s3.localhost) and an unrelated CA (other_ca)."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl CLI is not installed")
    from types import SimpleNamespace
    d = tmp_path_factory.mktemp("pki")
    (d / "openssl.cnf").write_text(_OPENSSL_CNF)
    for ca, cn in (("ca", "Reservoir e2e test CA"), ("other-ca", "Some other CA")):
        _openssl(d, "req", "-x509", "-config", "openssl.cnf", "-extensions", "v3_ca",
                 "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                 "-days", "2", "-subj", f"/CN={cn}")
    _openssl(d, "req", "-new", "-config", "openssl.cnf", "-newkey", "rsa:2048", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    _openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2",
             "-extfile", "openssl.cnf", "-extensions", "v3_server")
    return SimpleNamespace(dir=d, ca=d / "ca.pem", other_ca=d / "other-ca.pem",
                           cert=d / "server.pem", key=d / "server.key")


@pytest.fixture(scope="module")
def https_server(reservoir_factory, pki):
    """A Reservoir for the module with both the plain listener (endpoint) and an HTTPS one
    (tls_endpoint, certificate from `pki`); skipped when the target is moto."""
    return reservoir_factory(tls=(pki.cert, pki.key))


# --------------------------------------------------------------------------
# An S3 backend "over the internet": moto_server behind tests/tools/slow_s3_proxy.py
# --------------------------------------------------------------------------

SLOW_PROXY_PY = REPO_ROOT / "tests" / "tools" / "slow_s3_proxy.py"
BACKEND_KEY = "moto"  # moto does not check signatures: any credentials do


class SlowS3Proxy:
    """One slow_s3_proxy.py process (run by this test's python) on free ports in front of
    127.0.0.1:backend_port; see tests/tools/README.md for its knobs and control API."""

    def __init__(self, backend_port: int, log_path: Path, *extra: str):
        self.backend_port = backend_port
        self.log_path = Path(log_path)
        self.extra = [str(a) for a in extra]
        self.proc: subprocess.Popen | None = None
        self.port = self.control_port = 0

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 20.0) -> "SlowS3Proxy":
        import re
        import select
        log = open(self.log_path, "ab")
        argv = [sys.executable, str(SLOW_PROXY_PY), "--listen", f"{HOST}:0",
                "--backend", f"{HOST}:{self.backend_port}", "--control-port", "0", *self.extra]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        log.close()
        _LIVE_PROCS.append(self.proc)
        deadline = time.time() + timeout
        lines, buf, fd = [], b"", self.proc.stdout.fileno()
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                data = os.read(fd, 4096)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.decode().strip()
                    lines.append(line)
                    m = re.match(r"listening \S+:(\d+) control \S+:(\d+)$", line)
                    if m:
                        self.port, self.control_port = int(m.group(1)), int(m.group(2))
                    if line == "ready" and self.port and self.control_port:
                        return self
            elif self.proc.poll() is not None:
                break
        self.stop()
        raise ServerError(f"slow_s3_proxy did not get ready: stdout {lines}; log:\n{_tail(self.log_path)}")

    def stop(self, timeout: float = 10.0) -> int | None:
        code = stop_process(self.proc, timeout)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ctl(self, method: str, path: str, **params) -> tuple[int, dict]:
        """Call the control API; returns (status, JSON)."""
        q = urllib.parse.urlencode(params)
        url = f"http://{HOST}:{self.control_port}{path}" + (f"?{q}" if q else "")
        req = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def post(self, path: str, **params) -> dict:
        status, doc = self.ctl("POST", path, **params)
        assert status == 200, (path, params, status, doc)
        return doc

    def configure(self, **settings) -> dict:
        """POST /config: max_rps, max_put_rps, latency_ms, latency_sigma, latency_max_ms, ..."""
        return self.post("/config", **settings)

    def outage(self, mode: str, seconds: float | None = None) -> dict:
        return self.post("/outage", mode=mode, **({"seconds": seconds} if seconds else {}))

    def stats(self) -> dict:
        status, doc = self.ctl("GET", "/stats")
        assert status == 200, doc
        return doc


class SlowS3Backend:
    """moto_server plus a SlowS3Proxy in front of it. Point Reservoir's s3:// mounts at
    `endpoint` (the proxy); check what arrived with `direct` (boto3 straight to moto)."""

    DEFAULTS = dict(max_rps=0, max_put_rps=0, latency_ms=30, latency_sigma=0.5,
                    latency_max_ms=1000)

    def __init__(self, root: Path):
        self.root = Path(root)
        self.moto = MotoServer(self.root / "moto")
        self.proxy: SlowS3Proxy | None = None
        self._direct = None

    def start(self) -> "SlowS3Backend":
        self.moto.start()
        self.proxy = SlowS3Proxy(self.moto.port, self.root / "proxy.log").start()
        return self

    def stop(self) -> int | None:
        code = self.proxy.stop() if self.proxy else None
        self.moto.stop()
        return code

    @property
    def endpoint(self) -> str:
        return self.proxy.endpoint

    @property
    def direct(self):
        """boto3 client straight to moto (no proxy), retries off."""
        if self._direct is None or self._direct[0] != self.moto.endpoint:
            self._direct = (self.moto.endpoint, make_client(self.moto.endpoint, access_key=BACKEND_KEY,
                                                            secret_key=BACKEND_KEY, max_pool=20))
        return self._direct[1]

    def reset(self, **settings) -> None:
        """Outage off, the proxy's defaults (30 ms median latency, no limits) updated with
        `settings`, counters zeroed."""
        self.proxy.outage("off")
        self.proxy.configure(**{**self.DEFAULTS, **settings})
        self.proxy.post("/reset-stats")

    def create_bucket(self, name: str) -> str:
        self.direct.create_bucket(Bucket=name)
        return name

    def mount(self, path: str, ufs: str, **kw) -> dict:
        """A ReservoirServer mount dict for `ufs` ("s3://bucket/prefix") through the proxy."""
        return {"path": path, "ufs": ufs, "endpoint": self.endpoint,
                "access_key": BACKEND_KEY, "secret_key": BACKEND_KEY, **kw}

    def objects(self, bucket: str, prefix: str = "") -> dict:
        """{key: {"Size", "ETag" (unquoted)}} of everything moto holds under the prefix."""
        out, token = {}, None
        while True:
            kw = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            page = self.direct.list_objects_v2(**kw)
            for o in page.get("Contents", []):
                out[o["Key"]] = {"Size": o["Size"], "ETag": o["ETag"].strip('"')}
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]


@pytest.fixture(scope="module")
def slow_s3_backend(tmp_path_factory):
    """moto_server + slow_s3_proxy on free 127.0.0.1 ports for the module; both stopped at
    its end. Tests call .reset(...) for the proxy settings they need."""
    backend = SlowS3Backend(tmp_path_factory.mktemp("slow-s3")).start()
    yield backend
    alive = backend.proxy.alive()
    code = backend.stop()
    assert alive, f"the slow proxy died (exit code {code}); log:\n{_tail(backend.proxy.log_path)}"
