"""Liaowang against an earlier Liaowang: the same drain, interleaved, on one broker, in one run.

Run:  .venv/bin/python bench/before_after.py --before DIR [--feed single|batch] [--rounds 2]

``DIR`` is another checkout of Liaowang (a git worktree at the commit to compare with) that has
``bench/peers.py``. Both trees' ``peers.py --consumer liaowang`` drain the same preloaded feed (the
peers benchmark's, with its gas spikes) from their own persistent sessions, one after the other in
an order that alternates each round. On a machine shared with other work the absolute rates move
by 2 × between minutes; the ratio within a round is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, create_session, now_utc, preload, start_broker  # noqa: E402
from bench.peers import TOPIC, batch_feed, load_config_for_bench, single_feed  # noqa: E402


def drain(tree: Path, port: int, client_id: str, messages: int, readings: int) -> dict:
    done = subprocess.run([sys.executable, str(tree / "bench" / "peers.py"), "--consumer", "liaowang", "--port",
                           str(port), "--client-id", client_id, "--expect-messages", str(messages),
                           "--expect-readings", str(readings), "--timeout", "300"],
                          capture_output=True, text=True, cwd=tree, timeout=400)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{tree}: consumer failed: {done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["complete"] = result["readings"] == readings
    result["rate"] = result["readings"] / max(result["seconds"], 1e-9)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout (the baseline)")
    parser.add_argument("--feed", choices=("single", "batch"), default="batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--messages", type=int, default=None, help="default 40,000 single or 5,000 batches")
    args = parser.parse_args()
    config = load_config_for_bench()
    base = time.time() - 20 * 86400
    if args.feed == "batch":
        msgs, per = batch_feed(config.fleet, args.messages or 5_000, 100, base), 100
    else:
        msgs, per = single_feed(config.fleet, args.messages or 40_000, base), 1
    trees = {"before": args.before.resolve(), "after": ROOT}
    rates: dict[str, list[float]] = {"before": [], "after": []}
    ratios = []
    broker, port = start_broker()
    try:
        for rnd in range(args.rounds):
            ids = {who: f"before-after-{who}-{rnd}-{time.time_ns()}" for who in trees}
            for client_id in ids.values():
                create_session(port, client_id, TOPIC)
            preload(port, msgs, processes=1)
            order = ["before", "after"] if rnd % 2 == 0 else ["after", "before"]
            got = {}
            for who in order:
                got[who] = drain(trees[who], port, ids[who], len(msgs), len(msgs) * per)
                rates[who].append(got[who]["rate"])
                print(f"round {rnd + 1} {who:6} {got[who]['rate']:>12,.0f} readings/s  RSS {got[who]['rss_peak_mb']:.0f} MB"
                      f"{'' if got[who]['complete'] else '  INCOMPLETE'}", flush=True)
            ratios.append(got["after"]["rate"] / got["before"]["rate"])
    finally:
        broker.stop()
    print(f"{now_utc()} · {args.feed} feed, {len(msgs):,} messages · after ÷ before, per round: "
          + ", ".join(f"{r:.2f}" for r in ratios) + f" (median {statistics.median(ratios):.2f})")


if __name__ == "__main__":
    main()
