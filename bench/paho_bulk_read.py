"""A stock paho subscriber beside the same subscriber reading its socket in bulk (ingest.receiver_child.BulkReader).

Run:  .venv/bin/python bench/paho_bulk_read.py [--messages 60000] [--rounds 2]

One mosquitto (Liaowang's embedded configuration), two persistent QoS 1 sessions; each round the
same single-reading feed is preloaded into both, then each drains its copy (order alternating).
The rate is consumer-side, first to last message. This is the measurement behind step 5 of issue
15 item 5 in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import create_session, preload, start_broker  # noqa: E402
from bench.peers import consume_bare, load_config_for_bench, single_feed  # noqa: E402


def drain(port: int, client_id: str, n: int, bulk: bool) -> float:
    """Messages per second for one drain of ``n`` messages (bench.peers' bare subscriber)."""
    got = consume_bare(port, client_id, n, 300, bulk=bulk)
    if got["messages"] < n:
        raise RuntimeError(f"{client_id}: {got['messages']} of {n} messages")
    return got["messages"] / got["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    feed = single_feed(load_config_for_bench().fleet, args.messages, time.time() - 20 * 86400, 0)
    broker, port = start_broker()
    try:
        for r in range(args.rounds):
            for name in ("stock", "bulk"):
                create_session(port, f"paho-{name}")
            preload(port, feed, processes=1)
            for name in (("stock", "bulk") if r % 2 == 0 else ("bulk", "stock")):
                rate = drain(port, f"paho-{name}", len(feed), name == "bulk")
                print(f"round {r + 1} {name:5} {rate:10,.0f} msg/s", flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
