"""Summarise a py-spy raw profile of the worker (``make bench BENCH_ARGS=--profile``) by
pipeline stage, so a run says where the worker's time went per message.

    .venv/bin/python -m bench.profile var/bench/pipeline-0.pyspy.txt
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# First match wins: a frame whose text contains the marker puts the sample in that stage.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("inventory agent (streams/inventory)", ("track_stock",)),
    ("twin agent (streams/orders)", ("track_twin",)),
    ("normalise agent (streams/normalise)", ("register_normalise",)),
    ("producer (aiokafka sender, Faust send buffer)", ("Sender.", "ProducerBuffer", "producer.py")),
    ("consumer (fetcher, consumer thread, dispatch)", ("WorkerThread", "Fetcher", "_drain_messages", "on_message")),
    ("HTTP API and /metrics", ("aiohttp", "metrics_handler", "prometheus")),
    ("idle (waiting for I/O)", ("select (selectors.py",)),
)


def stage_of(frames: list[str]) -> str:
    for stage, markers in STAGES:
        if any(marker in frame for frame in frames for marker in markers):
            return stage
    return "other (event loop, timers, commits)"


def shares(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, samples per stage, and samples per innermost frame (self time)."""
    total = 0
    stages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        stages[stage_of(frames)] += n
        leaves[frames[-1]] += n
    return total, stages, leaves


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    total, stages, leaves = shares(Path(args[0]).read_text().splitlines())
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    print(f"{total} samples\n\nby stage:")
    for stage, n in stages.most_common():
        print(f"  {n / total:6.1%}  {stage}")
    print("\nhottest frames (self time):")
    for frame, n in leaves.most_common(15):
        print(f"  {n / total:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
