"""Shared pieces of the `reservoir bench` experiments (bench/exp_*.py): Markdown
tables, gnuplot plots, goals, and the JSON each experiment leaves for
bench/run_all.py, which regenerates BENCHMARKS.md."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
PLOTS = ROOT / "bench" / "plots"


def table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def goal(name: str, measured: str, ok: bool, command: str) -> dict:
    return {"goal": name, "measured": measured, "pass": bool(ok), "command": command}


def plot(png: Path, title: str, xlabel: str, ylabel: str, series: dict[str, list[tuple[float, float]]],
         logx: bool = True, logy: bool = True) -> None:
    """series: name -> [(x, y)]; one line each. Needs gnuplot (gnuplot-nox)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    data = OUT / (png.stem + ".dat")
    OUT.mkdir(parents=True, exist_ok=True)
    blocks, plots = [], []
    for i, (name, pts) in enumerate(series.items()):
        blocks.append("\n".join(f"{x} {y}" for x, y in pts))
        plots.append(f"'{data}' index {i} using 1:2 with linespoints lw 2 title {json.dumps(name)}")
    data.write_text("\n\n\n".join(blocks) + "\n")
    script = "\n".join([
        "set terminal pngcairo size 900,560 font ',10'",
        f"set output '{png}'",
        f"set title {json.dumps(title)}",
        f"set xlabel {json.dumps(xlabel)}",
        f"set ylabel {json.dumps(ylabel)}",
        "set grid",
        "set key top left",
        "set logscale x 2" if logx else "",
        "set logscale y" if logy else "",
        "plot " + ", ".join(plots),
    ])
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"plot {png} failed: {e}", file=sys.stderr)


def save(name: str, result: dict) -> Path:
    """Writes build/bench/NAME.json: {"title", "command", "markdown", "goals", "raw", ...}."""
    OUT.mkdir(parents=True, exist_ok=True)
    p = OUT / f"{name}.json"
    p.write_text(json.dumps(result, indent=2))
    return p


def finish(name: str, result: dict) -> int:
    """Saves an experiment's result for run_all.py and prints its table and goals."""
    save(name, result)
    print(result["markdown"])
    for g in result["goals"]:
        print(f"- {g['goal']}: {g['measured']} ({'pass' if g['pass'] else 'MISS'})")
    return 0


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    shown = str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else sys.argv[0]
    return "python3 " + " ".join(shlex.quote(a) for a in [shown, *sys.argv[1:]])


def step(doc: dict, endpoint: str, op: str, conc: int) -> dict:
    for s in doc["steps"]:
        if s["endpoint"] == endpoint and s["op"] == op and s["concurrency"] == conc:
            return s
    raise KeyError((endpoint, op, conc))
