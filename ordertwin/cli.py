"""The ``ordertwin`` command: one entry point, a subcommand per process.

Each subcommand builds the Settings once and passes them down; modules that connect to
anything are imported inside the subcommand so ``ordertwin --help`` stays cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ordertwin.dev import DEMO_CHANNELS
from ordertwin.errors import OrdertwinError
from ordertwin.logs import setup_logging
from ordertwin.settings import REPO_ROOT, Settings
from ordertwin.topics import CHANNELS, SOURCES, Catalogue

KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run the Faust worker (normalise + twin agents, HTTP API, /metrics)."""
    from ordertwin.logs import logging_config
    from streams.app import ServiceWorker, build

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pipeline = build(settings)
    worker = ServiceWorker(
        pipeline.app,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=logging_config(settings.log_format, settings.log_level, "worker"),
    )
    worker.execute_from_commandline()
    return 0


def cmd_connector(settings: Settings, args: argparse.Namespace) -> int:
    """Run one source connector until interrupted."""
    from connectors.runner import run_connector

    return _run_async(run_connector(args.source, settings, from_start=args.from_start))


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Serve platform simulators on localhost (fake Taobao etc.) for demos and tests.

    ``--scenario`` plays one generated scenario on every source's simulator at once (what
    ``make run`` does) and writes its ground truth; otherwise one ``--source`` is served
    with ``--orders`` generated orders."""
    if args.scenario:
        return _run_async(_play_scenario(settings, args))
    from connectors.runner import run_simulator

    return _run_async(run_simulator(args.source, settings, n_orders=args.orders, seed=args.seed))


async def _play_scenario(settings: Settings, args: argparse.Namespace) -> None:
    from datetime import UTC, timedelta

    from connectors.scenario import scenario_summary
    from connectors.stage import demo_scenario, start_stage

    channels = CHANNELS if args.channels == "all" else tuple(c for c in args.channels.split(",") if c)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=args.start_in)
    outage = None
    if args.outage:
        source, offset, duration = args.outage.split(":")
        outage = (source, timedelta(seconds=float(offset)), timedelta(seconds=float(duration)))
    scenario = demo_scenario(
        seed=args.seed,
        n_orders=args.orders,
        span=timedelta(seconds=args.span),
        threshold=timedelta(seconds=settings.divergence_threshold_s),
        fault_rate=args.fault_rate,
        start=start,
        channels=channels,
        outage=outage,
        per_kind=args.per_kind,
    )
    if args.ground_truth:
        args.ground_truth.parent.mkdir(parents=True, exist_ok=True)
        scenario.write_ground_truth(args.ground_truth)
    summary = scenario_summary(scenario)
    logging.getLogger("ordertwin.simulate").info(
        "scenario: %d orders from %s, %d faults %s; records per source %s",
        summary["orders"],
        start.isoformat(),
        summary["faults"],
        summary["faults_per_kind"],
        summary["records_per_source"],
    )
    stage = await start_stage(settings, scenario, sources=SOURCES)
    try:
        await asyncio.Event().wait()
    finally:
        await stage.close()


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    """Create (idempotently) or list the topics of the catalogue."""
    catalogue = Catalogue.from_settings(settings)
    if args.action == "create":
        from ordertwin.admin import create_topics

        outcome = create_topics(
            settings.kafka_config(), catalogue.all(), replication_factor=settings.replication_factor
        )
        for name, what in sorted(outcome.items()):
            print(f"{what:8} {name}")
    else:
        for spec in catalogue.all():
            retention = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000}d"
            print(
                f"{spec.name:28} p={spec.partitions:<3} {spec.cleanup_policy:8} {retention:8} "
                f"key={spec.key}  value={spec.value}  writer={spec.writer}"
            )
    return 0


def cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    """Print a topic as JSON lines, decoding our Avro values (raw topics as they are)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from ordertwin.avro import Codec

    codec = Codec.from_dir(settings.schemas_dir)
    topic = args.topic if args.topic.startswith(settings.topic_prefix) else settings.topic_prefix + args.topic
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"ordertwin-tail-{os.getpid()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        }
    )
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        raise OrdertwinError(f"topic {topic!r} does not exist")
    tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions] if args.from_beginning else None
    if tps:
        consumer.assign(tps)
    else:
        consumer.subscribe([topic])
    printed, idle_since = 0, time.monotonic()
    try:
        while args.limit <= 0 or printed < args.limit:
            msg = consumer.poll(0.5)
            if msg is None:
                if not args.follow and time.monotonic() - idle_since > 2.0:
                    break
                continue
            if msg.error():
                print(json.dumps({"error": str(msg.error())}), file=sys.stderr)
                continue
            idle_since = time.monotonic()
            print(json.dumps(_render(codec, msg), ensure_ascii=False, default=_json_default))
            printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def _render(codec: Any, msg: Any) -> dict[str, Any]:
    value = msg.value()
    out: dict[str, Any] = {
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": msg.key().decode("utf-8", "replace") if msg.key() else None,
    }
    if value is None:
        out["value"] = None
    elif value[:2] == b"\xc3\x01":
        name, record = codec.decode(value)
        out["schema"] = name
        out["value"] = record
    else:
        try:
            out["value"] = json.loads(value)
        except ValueError:
            out["value_bytes"] = value.decode("utf-8", "replace")
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(type(value).__name__)


def cmd_notify(settings: Settings, args: argparse.Namespace) -> int:
    """Deliver alerts to WeCom / DingTalk group robots or webhooks (ORDERTWIN_NOTIFY_TARGETS)."""
    from ordertwin.notify import run_notify, send_test

    if args.send_test:
        results = asyncio.run(send_test(settings))
        for name, outcome in results.items():
            print(f"{name}: {outcome}")
        return 0 if all(v == "ok" for v in results.values()) else 1
    return _run_async(run_notify(settings))


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    """Start everything locally: Kafka, topics, a scenario on every platform simulator, a
    connector per source, the worker; Ctrl-C stops what this command started."""
    from ordertwin.dev import connector_environments, current_environment

    started_kafka = subprocess.run(["bash", str(KAFKA_SH), "status"], capture_output=True).returncode != 0
    subprocess.run(["bash", str(KAFKA_SH), "up"], check=True)
    exe = [sys.executable, "-m", "ordertwin.cli"]
    env = current_environment()
    subprocess.run([*exe, "topics", "create"], check=True, env=env)
    os.environ.update(env)  # the demo defaults, so this process reads the settings its children get
    dev_settings = Settings()
    log_dir = REPO_ROOT / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    truth = REPO_ROOT / "var" / "ground_truth.json"
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(name: str, argv: list[str], proc_env: dict[str, str]) -> None:
        out = (log_dir / f"{name}.log").open("ab")
        procs.append((name, subprocess.Popen([*exe, *argv], stdout=out, stderr=subprocess.STDOUT, env=proc_env)))

    seed = args.seed or int(time.time()) % 1_000_000
    spawn("worker", ["worker"], env)
    for source, source_env in connector_environments(env, dev_settings).items():
        spawn(f"connector-{source}", ["connector", source], source_env)
    spawn(
        "simulator",
        [
            "simulate",
            "--scenario",
            "--orders",
            str(args.orders),
            "--span",
            str(args.span),
            "--fault-rate",
            str(args.fault_rate),
            "--seed",
            str(seed),
            "--channels",
            args.channels,
            "--outage",
            args.outage,
            "--start-in",
            "20",
            "--ground-truth",
            str(truth),
        ],
        env,
    )
    base = f"http://{dev_settings.web_host}:{dev_settings.web_port}"
    print(
        f"\nordertwin is running (logs in var/log/): a scenario of {args.orders} orders on {args.channels} over "
        f"{args.span / 60:.0f} min (seed {seed}, fault rate {args.fault_rate:.0%}, outage {args.outage or 'none'}),\n"
        f"collected by a connector per source; alerts after {dev_settings.divergence_threshold_s:.0f} s out of step.\n"
        f"  ops page        : {base}/ops\n"
        f"  open alerts     : {base}/alerts?state=open\n"
        f"  an order's twin : {base}/orders/<order id>   (ids: {base}/alerts, or ordertwin tail orders.twin)\n"
        f"  worker health   : {base}/health\n"
        f"  metrics         : {base}/metrics   (connectors: ports {dev_settings.connector_metrics_port + 2}.."
        f"{dev_settings.connector_metrics_port + 1 + len(SOURCES)})\n"
        f"  injected faults : {truth.relative_to(REPO_ROOT)} (the alerts to expect)\n"
        "  a topic         : .venv/bin/ordertwin tail orders.events --from-beginning\n"
        "Ctrl-C stops everything this command started.\n",
        flush=True,
    )
    try:
        while all(p.poll() is None for _, p in procs):
            time.sleep(1)
        dead = [n for n, p in procs if p.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited; see var/log/", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for _, p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if started_kafka:
            subprocess.run(["bash", str(KAFKA_SH), "down"])


def _run_async(coro: Any) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ordertwin",
        description="A live digital twin of every e-commerce order on Kafka. Settings come "
        "from ORDERTWIN_* environment variables (see README).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    w = sub.add_parser("worker", help=cmd_worker.__doc__, description=cmd_worker.__doc__)
    w.set_defaults(func=cmd_worker)

    c = sub.add_parser("connector", help=cmd_connector.__doc__, description=cmd_connector.__doc__)
    c.add_argument("source", choices=SOURCES, help="which source to pull/receive")
    c.add_argument("--from-start", action="store_true", help="ignore the stored cursor")
    c.set_defaults(func=cmd_connector)

    s = sub.add_parser("simulate", help=cmd_simulate.__doc__, description=cmd_simulate.__doc__)
    s.add_argument("--source", default="taobao", choices=SOURCES, help="which platform to simulate")
    s.add_argument("--orders", type=int, default=200, help="orders to generate")
    s.add_argument("--seed", type=int, default=7, help="seed for reproducible data")
    s.add_argument("--scenario", action="store_true", help="play one scenario on every source's simulator")
    s.add_argument(
        "--channels",
        default=",".join(DEMO_CHANNELS),
        help="scenario channels: a comma list, or all (default: %(default)s)",
    )
    s.add_argument("--span", type=float, default=3600.0, help="scenario: seconds over which orders are created")
    s.add_argument("--fault-rate", type=float, default=0.02, help="scenario: share of orders with a fault")
    s.add_argument("--per-kind", type=int, default=0, help="scenario: exactly N faults of every kind (tests)")
    s.add_argument("--outage", default="", help="scenario: SOURCE:OFFSET_S:DURATION_S, e.g. carrier:300:120")
    s.add_argument("--start-in", type=float, default=10.0, help="scenario: seconds until the first order")
    s.add_argument("--ground-truth", type=Path, help="scenario: write the expected alerts (JSON) here")
    s.set_defaults(func=cmd_simulate)

    t = sub.add_parser("topics", help=cmd_topics.__doc__, description=cmd_topics.__doc__)
    t.add_argument("action", choices=["create", "list"], help="create missing topics, or list the catalogue")
    t.set_defaults(func=cmd_topics)

    tl = sub.add_parser("tail", help=cmd_tail.__doc__, description=cmd_tail.__doc__)
    tl.add_argument("topic", help="topic name (the prefix is added if missing)")
    tl.add_argument("-b", "--from-beginning", action="store_true", help="start at the oldest record")
    tl.add_argument("-f", "--follow", action="store_true", help="keep waiting for new records")
    tl.add_argument("-n", "--limit", type=int, default=0, help="stop after N records (0 = no limit)")
    tl.set_defaults(func=cmd_tail)

    n = sub.add_parser("notify", help=cmd_notify.__doc__, description=cmd_notify.__doc__)
    n.add_argument("--send-test", action="store_true", help="post one test message to every target and exit")
    n.set_defaults(func=cmd_notify)

    d = sub.add_parser("dev", help=cmd_dev.__doc__, description=cmd_dev.__doc__)
    d.add_argument("--orders", type=int, default=2400, help="orders in the scenario")
    d.add_argument("--span", type=float, default=3600.0, help="seconds over which the orders are created")
    d.add_argument("--fault-rate", type=float, default=0.02, help="share of orders with an injected fault")
    d.add_argument(
        "--channels",
        default=",".join(DEMO_CHANNELS),
        help="channels with orders (all = also Shopee and Shopify, which the OMS/WMS cannot name)",
    )
    d.add_argument("--seed", type=int, default=0, help="scenario seed (0 = a new one each run)")
    d.add_argument("--outage", default="jd:600:180", help="SOURCE:OFFSET_S:DURATION_S ('' for none)")
    d.set_defaults(func=cmd_dev)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
        service = f"{args.command}:{args.source}" if getattr(args, "source", None) else args.command
        setup_logging(settings.log_format, settings.log_level, service)
        return int(args.func(settings, args))
    except OrdertwinError as exc:
        print(f"ordertwin: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
