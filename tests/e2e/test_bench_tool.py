"""`reservoir bench`, the S3 load generator, against a real `reservoir serve`: every
operation for a moment, then the JSON report is checked (operations done, no
errors, every body read verified against what was written), and --compare runs
each step on two servers.

    bash tests/e2e/run.sh tests/e2e/test_bench_tool.py
"""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import ACCESS_KEY, RESERVOIR_BIN, SECRET_KEY

pytestmark = pytest.mark.reservoir_only

OPS = ["put", "get", "raw", "stat", "list", "delete", "multipart", "mixed"]


def run_bench(tmp_path, endpoint: str, *args, check: bool = True) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "bench.json"
    cmd = [str(RESERVOIR_BIN), "bench", *args, "--endpoint", endpoint, "--access-key", ACCESS_KEY,
           "--secret-key", SECRET_KEY, "--no-progress", "--json", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, f"{cmd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p, (json.loads(out.read_text()) if out.exists() else {})


@pytest.fixture(scope="module")
def srv(reservoir_factory):
    return reservoir_factory()


@pytest.mark.parametrize("op", OPS)
def test_every_operation_runs_without_errors(srv, tmp_path, op):
    size = "5MiB-11MiB" if op == "multipart" else "1KiB-20KiB"
    extra = ["--part-size", "5MiB"] if op == "multipart" else []
    p, doc = run_bench(tmp_path, srv.endpoint, op, "--concurrency", "1,4", "--duration", "1s",
                       "--obj-size", size, "--objects", "50", "--verify", *extra)
    steps = doc["steps"]
    assert [s["concurrency"] for s in steps] == [1, 4]
    for s in steps:
        assert s["op"] == op
        assert s["ops"] > 0, s
        assert s["errors"] == 0 and s["errors_by_code"] == {}, s
        for sub in s["by_op"].values():
            assert sub["errors"] == 0 and sub["verify_failures"] == 0, s
        lat = s["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
        if op in ("put", "get", "raw", "multipart"):
            assert s["bytes"] > 0 and s["mb_per_s"] > 0
    # The table on stdout has one row per step (and sub-operation).
    assert p.stdout.count(f"| A | {op} |") == 2


def test_raw_reads_back_exactly_what_it_wrote(srv, tmp_path):
    _, doc = run_bench(tmp_path, srv.endpoint, "raw", "--concurrency", "8", "--ops", "200",
                       "--obj-size", "10KiB-300KiB", "--verify")
    (s,) = doc["steps"]
    assert s["by_op"]["put"]["ops"] == 200 and s["by_op"]["get"]["ops"] == 200
    assert s["by_op"]["get"]["verify_failures"] == 0
    # GET bytes == PUT bytes: every body had the written length.
    assert s["by_op"]["get"]["bytes"] == s["by_op"]["put"]["bytes"]


def test_compare_interleaves_two_endpoints_and_prints_ratios(srv, reservoir_factory, tmp_path):
    other = reservoir_factory()
    p, doc = run_bench(tmp_path, srv.endpoint, "put,get", "--concurrency", "1,2", "--ops", "50",
                       "--compare", other.endpoint)
    order = [(s["op"], s["concurrency"], s["endpoint"]) for s in doc["steps"]]
    assert order == [("put", 1, "A"), ("put", 1, "B"), ("put", 2, "A"), ("put", 2, "B"),
                     ("get", 1, "A"), ("get", 1, "B"), ("get", 2, "A"), ("get", 2, "B")]
    assert len(doc["compare"]) == 4
    for r in doc["compare"]:
        assert r["ops_per_s_ratio"] > 0 and r["p50_ratio"] > 0
    assert "Ratios A/B" in p.stdout


def test_wrong_credentials_are_reported_not_hidden(srv, tmp_path):
    out = tmp_path / "bad.json"
    p = subprocess.run([str(RESERVOIR_BIN), "bench", "put", "--endpoint", srv.endpoint, "--access-key", ACCESS_KEY,
                        "--secret-key", "wrong", "--ops", "5", "--no-progress", "--json", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "SignatureDoesNotMatch" in p.stderr


def test_anonymous_requests_carry_no_signature(srv, tmp_path):
    out = tmp_path / "anon.json"
    p = subprocess.run([str(RESERVOIR_BIN), "bench", "put", "--endpoint", srv.endpoint, "--anonymous",
                        "--bucket", "anon-bench", "--ops", "3", "--no-progress", "--json", str(out)],
                       capture_output=True, text=True, timeout=60)
    doc = json.loads(out.read_text())
    (s,) = doc["steps"]
    assert s["ops"] == 3
    assert s["errors"] == 3  # anonymous access is off: S3's AccessDenied, counted by code
    assert all(code.startswith("403") for code in s["errors_by_code"]), s["errors_by_code"]
    assert p.returncode == 1
