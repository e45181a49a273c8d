"""``python -m connectors.scenario``: generate a scenario, print its summary (JSON), and
optionally write its ground truth and its records (JSON lines, values as UTF-8 text)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.scenario.generator import generate
from connectors.scenario.model import CHANNELS, FAULT_KINDS, scenario_summary
from connectors.scenario.platforms import can_carry


def _outage(text: str) -> tuple[str, timedelta, timedelta]:
    source, offset, duration = text.split(":")
    return source, timedelta(seconds=float(offset)), timedelta(seconds=float(duration))


def _channels(text: str) -> tuple[str, ...]:
    """``all`` or a comma list of channel names."""
    if text.strip() == "all":
        return CHANNELS
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(names) - set(CHANNELS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown channels {unknown or [text]}; known: all, {', '.join(CHANNELS)}")
    return names


def _kinds_for(channels: Sequence[str]) -> list[str]:
    """The fault kinds some chosen channel can carry (``--per-kind`` injects each of those)."""
    return [k for k in FAULT_KINDS if any(can_carry(c, k) for c in channels)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.scenario", description=__doc__)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--start", default="", help="ISO time with zone; default: now, to the second")
    parser.add_argument("--span", type=float, default=60.0, help="seconds over which orders are created")
    parser.add_argument("--threshold", type=float, default=5.0, help="the twin's divergence threshold, seconds")
    parser.add_argument(
        "--per-kind",
        type=int,
        default=0,
        help=f"faults of each kind the channels can carry ({', '.join(FAULT_KINDS)})",
    )
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--heal-share", type=float, default=0.25)
    parser.add_argument("--outage", type=_outage, action="append", default=[], help="SOURCE:OFFSET_S:DURATION_S")
    parser.add_argument(
        "--channels",
        type=_channels,
        default=("taobao",),
        help=f"comma list of channels to place orders on, or all ({', '.join(CHANNELS)}); default taobao",
    )
    parser.add_argument("--ground-truth", type=Path, help="write the expected alerts (JSON) here")
    parser.add_argument("--records", type=Path, help="write the records (JSON lines) here")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC).replace(microsecond=0)
    scenario = generate(
        seed=args.seed,
        n_orders=args.orders,
        start=start,
        span=timedelta(seconds=args.span),
        threshold=timedelta(seconds=args.threshold),
        fault_counts={k: args.per_kind for k in _kinds_for(args.channels)} if args.per_kind else None,
        fault_rate=args.fault_rate,
        heal_share=args.heal_share,
        outages=args.outage,
        channels=args.channels,
    )
    if args.ground_truth:
        scenario.write_ground_truth(args.ground_truth)
    if args.records:
        with args.records.open("w", encoding="utf-8") as out:
            for rec in scenario.records:
                row = {
                    "at": rec.at.isoformat(),
                    "publish_at": scenario.publish_at(rec).isoformat(),
                    "source": rec.source,
                    "key": rec.key.decode("utf-8"),
                    "order_id": rec.order_id,
                    "value": rec.value.decode("utf-8"),
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    json.dump(scenario_summary(scenario), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
