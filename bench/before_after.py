"""SendMessage's overhead before and after a change: bench.send_overhead on two source trees, alternated.

    git archive <before-commit> | tar -x -C /tmp/before
    python -m bench.before_after --before /tmp/before [--rounds 6] [--requests 600] [--mcp]

Each round runs ``python -m bench.send_overhead`` once on the ``--before`` tree and once on this one
(``--after``, default: the current directory), back to back, so a busy machine weighs on both alike;
with ``--mcp`` each round also runs the ``send_message`` tool on the after tree. Prints every run,
then per side the median and the range of the overhead's p50 and p99 and of the server's CPU per
message, and the change of the medians. A shared machine makes single runs noisy: read the medians
and ranges, not one run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

FIGURES = {
    "p50": re.compile(r"overhead over connector \(ms\):\s+p50 ([\d.]+)"),
    "p99": re.compile(r"overhead over connector \(ms\):.*p99 ([\d.]+)"),
    "cpu": re.compile(r"server CPU ([\d.]+) ms per message"),
}


def run(tree: Path, requests: int, via: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "bench.send_overhead", "--requests", str(requests)]
    if via == "mcp":
        command += ["--via", "mcp"]
    out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=900, check=True).stdout
    figures = {}
    for name, pattern in FIGURES.items():
        found = pattern.search(out)
        if found is None:
            raise RuntimeError(f"no {name} figure in the output of {command} in {tree}:\n{out}")
        figures[name] = float(found.group(1))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the source tree before the change")
    parser.add_argument("--after", type=Path, default=Path.cwd(), help="the source tree after it (default: here)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--mcp", action="store_true", help="also run the send_message tool (POST /mcp) each round")
    args = parser.parse_args(argv)

    sides = [("before", args.before, "rest"), ("after", args.after, "rest")]
    if args.mcp:
        sides.append(("after, MCP tool", args.after, "mcp"))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in sides}
    for round_ in range(1, args.rounds + 1):
        for name, tree, via in sides:
            figures = run(tree.resolve(), args.requests, via)
            results[name].append(figures)
            load = os.getloadavg()[0]
            print(
                f"round {round_} {name:15} overhead p50 {figures['p50']:6.1f} ms  p99 {figures['p99']:6.1f} ms"
                f"  server CPU {figures['cpu']:.2f} ms/message  (load {load:.1f})",
                flush=True,
            )
    print(f"\nSendMessage, {args.requests} messages a run, {args.rounds} rounds; median [min-max] of the runs:")
    medians: dict[str, dict[str, float]] = {}
    for name, _, _ in sides:
        runs = results[name]
        medians[name] = {k: statistics.median(r[k] for r in runs) for k in FIGURES}
        shown = "  ".join(
            f"{k} {medians[name][k]:.2f} [{min(r[k] for r in runs):.2f}-{max(r[k] for r in runs):.2f}]" for k in FIGURES
        )
        print(f"  {name:15} {shown}")
    change = "  ".join(
        f"{k} {100 * (medians['after'][k] / medians['before'][k] - 1):+.1f} %" for k in FIGURES if medians["before"][k]
    )
    print(f"  after vs before (medians): {change}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
