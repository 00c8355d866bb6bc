"""Benchmark suite results as a markdown table, a PNG chart and the README's table.

    python -m benchmarks.report [benchmarks/results/suite.json] [--no-readme]

The README's table lives between the two marker comments below; everything else in the
README is left alone.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(os.path.dirname(HERE), "README.md")
BEGIN, END = "<!-- benchmark-table:begin -->", "<!-- benchmark-table:end -->"
PEERS = ("pytorch", "torch.compile", "onnxruntime", "tvm-default")
TITLES = {"pytorch": "PyTorch eager", "torch.compile": "torch.compile", "onnxruntime": "ONNX Runtime", "tvm-default": "TVM default"}


def tuning_summary(db_path: str, model: str) -> dict | None:
    """What `graphc tune` recorded for this model in the database (sessions.json)."""
    path = os.path.join(db_path, "sessions.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        sessions = [s for s in json.load(f) if s["model"] == model]
    if not sessions:
        return None
    return {
        "seconds": sum(s["seconds"] for s in sessions),
        "trials": sum(s["trials_run"] for s in sessions),
        "candidates": sum(s.get("candidates", 0) for s in sessions),  # template knob configurations
        "sessions": len(sessions),
    }


def _tuning_work(t: dict) -> str:
    """'40 template candidates + 64 MetaSchedule trials' (what was measured)."""
    parts = [f"{t['candidates']} template candidates"] if t.get("candidates") else []
    if t.get("trials") or not parts:
        parts.append(f"{t['trials']} MetaSchedule trials")
    return " + ".join(parts)


def _ms(entry: dict | None) -> str:
    if entry is None:
        return "-"
    if "error" in entry:
        return "failed"
    flag = "" if entry.get("correct") else " (WRONG)"
    return f"{entry['median_ms']:.2f} [{entry['min_ms']:.2f}]{flag}"


def markdown(results: dict) -> str:
    machine = results["machine"]
    models = results["models"]
    tuned = any("graphc-tuned" in row["systems"] for row in models.values())
    head = ["model", "graphc ms"] + (["graphc tuned ms"] if tuned else []) + [f"{TITLES[p]} ms (x)" for p in PEERS]
    lines = [
        f"Median latency over interleaved rounds on {machine['cpu']} ({results.get('threads', machine['threads'])} threads), {results['timestamp']}. "
        "Cells: median [min] ms; (x) = that system's median / graphc's"
        + (" best (tuned where tuned)" if tuned else "")
        + f": above 1, graphc is faster. Every system's outputs are checked against {results.get('reference', 'PyTorch eager')} "
        f"(max abs diff <= {results['tolerance']:g} of the output scale; WRONG marks a failure).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, row in models.items():
        sys_ = row["systems"]
        mine = _best_graphc(row)
        cells = [name, _ms(sys_.get("graphc"))] + ([_ms(sys_.get("graphc-tuned"))] if tuned else [])
        for p in PEERS:
            e = sys_.get(p)
            if e is None or "error" in e or mine is None:
                cells.append(_ms(e))
            else:
                rounds = f", {e['rounds']} round{'s' if e['rounds'] > 1 else ''}" if e["rounds"] < results["rounds"] else ""
                cells.append(f"{_ms(e)} ({e['median_ms'] / mine:.2f}x{rounds})")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Compile time (s) / peak RSS growth while compiling (MB) / during the first run (MB), each system in a fresh "
        "process (a cold start: loading its compiler's libraries counts; PyTorch eager compiles nothing):",
        "",
    ]
    systems = ["graphc"] + (["graphc-tuned"] if tuned else []) + list(PEERS)
    lines += ["| model | " + " | ".join(systems) + " |", "|" + "---|" * (len(systems) + 1)]
    for name, row in models.items():
        cells = [name]
        for s in systems:
            e = row["systems"].get(s)
            cells.append("-" if e is None or "error" in e else f"{e['compile_s']:.1f} / {e['compile_rss_mb']:.0f} / {e['run_rss_mb']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    tunings = {n: r["tuning"] for n, r in models.items() if r.get("tuning")}
    if tunings:
        lines += ["", "Tuning (`graphc tune`): " + "; ".join(f"{n} {_tuning_work(t)} in {t['seconds'] / 60:.1f} min" for n, t in tunings.items()) + "."]
    return "\n".join(lines) + "\n"


def _best_graphc(row: dict) -> float | None:
    times = [row["systems"][k]["median_ms"] for k in ("graphc", "graphc-tuned") if "median_ms" in row["systems"].get(k, {})]
    return min(times) if times else None


def model_line(name: str, row: dict) -> str:
    parts = []
    for s, e in row["systems"].items():
        parts.append(f"{s} {_ms(e)}")
    return f"{name}: " + ", ".join(parts) + " (ms)"


def chart(results: dict, path: str) -> str:
    """Speed relative to PyTorch eager (eager ms / system ms, log scale), one group of bars per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = results["models"]
    systems = [s for s in ("graphc", "graphc-tuned", *PEERS) if any(s in r["systems"] for r in models.values())]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(models)), 4))
    width = 0.8 / len(systems)
    for i, s in enumerate(systems):
        xs, ys = [], []
        for j, row in enumerate(models.values()):
            e, base = row["systems"].get(s, {}), row["systems"].get("pytorch", {})
            if "median_ms" in e and "median_ms" in base:
                xs.append(j + (i - (len(systems) - 1) / 2) * width)
                ys.append(base["median_ms"] / e["median_ms"])
        ax.bar(xs, ys, width, label=TITLES.get(s, s))
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(models)), list(models))
    ax.set_ylabel("speed vs PyTorch eager (x, log)")
    ax.set_title(f"{results['machine']['cpu']}, {results.get('threads', results['machine']['threads'])} threads")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def update_readme(table: str, readme: str = README) -> bool:
    """Replace the README's table between the markers; False when the README has no markers."""
    with open(readme) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        return False
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    with open(readme, "w") as f:
        f.write(f"{before}{BEGIN}\n{table}{END}{after}")
    return True


def write_all(json_path: str, readme: bool = True) -> list[str]:
    with open(json_path) as f:
        results = json.load(f)
    stem = os.path.splitext(json_path)[0]
    table = markdown(results)
    with open(f"{stem}.md", "w") as f:
        f.write(table)
    written = [f"{stem}.md", chart(results, f"{stem}.png")]
    if readme and update_readme(table):
        written.append(README)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="?", default=os.path.join(HERE, "results", "suite.json"))
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args(argv)
    print("wrote", *write_all(args.json, readme=not args.no_readme))
    return 0


if __name__ == "__main__":
    sys.exit(main())
