"""Alarm priority distribution of a demo day (and of scenario files), for docs/alarms.md.

Runs the demo fleet's simulator — every site and sensor of the configuration, the built-in demo
incidents repeating every 15 minutes, nobody acknowledging — through the production pipeline on
a fake clock (the way `liaowang scenario test` runs a scenario), then counts the alarms raised per
priority and per family: annunciations (activations announced: raised, escalated, reactivated,
each at the priority it presented) and episodes (by the highest priority they reached).

    .venv/bin/python scripts/priority_distribution.py                      # a demo day, demo config
    .venv/bin/python scripts/priority_distribution.py --hours 1 --seed 2   # a shorter run, another seed
    .venv/bin/python scripts/priority_distribution.py --scenarios scenarios/*.yaml   # also the scenarios

Same configuration, seed and start: the same figures (event time comes from the feed).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foundation.config import default_config_dir, load_config  # noqa: E402
from foundation.logs import configure_logging  # noqa: E402
from liaowang.scenario import PRIORITIES, load_scenario, run_demo_day, run_scenario  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="configuration folder (default: as liaowang finds it)")
    parser.add_argument("--hours", type=float, default=24.0, help="event time to simulate (default 24)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2026-11-25T00:00:00+08:00", help="event time of the first reading")
    parser.add_argument("--step", type=float, default=10.0, help="seconds of event time per delivered batch")
    parser.add_argument("--scenarios", nargs="*", default=[], help="scenario files to count as well")
    parser.add_argument("--no-demo-day", action="store_true", help="only the scenarios")
    args = parser.parse_args(argv)
    configure_logging("error")
    config = load_config(Path(args.config) if args.config else default_config_dir())
    if args.scenarios:
        print("| scenario | alarms | urgent | high | medium | low (episodes by peak) |")
        print("|---|---:|---:|---:|---:|---:|")
        episodes: Counter = Counter()
        annunciations: Counter = Counter()
        for name in args.scenarios:
            outcome = run_scenario(load_scenario(Path(name)), config, name)
            episodes += outcome.by_peak
            annunciations += outcome.annunciations
            print(f"| {Path(name).stem} | {outcome.raised} | " + " | ".join(str(outcome.by_peak[p]) for p in PRIORITIES)
                  + " |")
        for what, c in (("episodes", episodes), ("annunciations", annunciations)):
            total = sum(c.values()) or 1
            print(f"| **all, {what}** | {sum(c.values())} | "
                  + " | ".join(f"{c[p]} ({100 * c[p] / total:.0f} %)" for p in PRIORITIES) + " |")
        print()
    if not args.no_demo_day:
        day = run_demo_day(config, start=args.start, duration_s=args.hours * 3600, seed=args.seed, step_s=args.step)
        print("\n".join(day.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
