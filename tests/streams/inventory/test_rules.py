"""SKU alert episodes (pure, injected clock): opened on the fact, raised once when the WMS
watermark passes the deadline, resolved once; deterministic ids; the channel guard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from streams.inventory import rules, stock
from streams.inventory.core import step
from streams.inventory.recovery import reconcile
from streams.inventory.rules import Config
from tests.streams.inventory.facts import SKU, T0, at, change, movement, snapshot

NOW = T0 + timedelta(days=1)
CONFIG = Config(oversell_threshold_ms=0, divergence_threshold_ms=600_000, low_stock={"*": 2}, guard_share=0.0)


def feed(
    facts: list[dict[str, Any]], config: Config = CONFIG, wm: float | None = None
) -> tuple[stock.State, list[Any]]:
    """Step every fact; raise with a WMS watermark at ``wm`` minutes (None: no watermark yet)."""
    row = stock.empty(SKU)
    out: list[Any] = []
    watermark = (lambda src: int(at(wm).timestamp() * 1000) if src == "wms" else None) if wm is not None else None
    for fact in facts:
        kw = {"event": fact} if "kind" in fact else {"change": fact}
        result = step(row, config=config, now=NOW, **kw)
        row = result.state
        out += result.resolved + result.commands
        if watermark is not None:
            row, raised = rules.raise_due(row, watermark, NOW, config)
            out += raised
    return row, out


def summary(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["rule"], a["state"]) for a in alerts if "rule" in a]


OVERSOLD = [
    snapshot("HZ01", 3, 0),
    change("taobao:1", "RESERVED", 1, version=1, qty=2),
    change("jd:2", "RESERVED", 2, version=1, qty=2),
]


def test_oversell_waits_for_the_wms_watermark_then_raises_once() -> None:
    row, alerts = feed(OVERSOLD)
    assert alerts == [] and set(row["episodes"]) == {"OVERSELL", "LOW_STOCK"}
    assert sorted(rules.pending_deadlines(row)) == [
        ("wms", int(at(1).timestamp() * 1000), "LOW_STOCK"),  # available 1 <= 2 from the first order
        ("wms", int(at(2).timestamp() * 1000), "OVERSELL"),
    ]
    row, raised = rules.raise_due(row, lambda s: int(at(1.9).timestamp() * 1000), NOW, CONFIG)
    assert summary(raised) == [("LOW_STOCK", "RAISED")]  # not OVERSELL: the WMS has not vouched that far
    row, raised = rules.raise_due(row, lambda s: int(at(2).timestamp() * 1000), NOW, CONFIG)
    oversell = next(a for a in raised if a["rule"] == "OVERSELL")
    assert oversell["subject_type"] == "sku" and oversell["subject"] == SKU and oversell["severity"] == "CRITICAL"
    assert oversell["details"]["channels"] == "jd,taobao" and oversell["details"]["available"] == "-1"
    assert oversell["alert_id"] == rules.alert_id("OVERSELL", SKU, int(at(2).timestamp() * 1000))
    assert rules.raise_due(row, lambda s: int(at(90).timestamp() * 1000), NOW, CONFIG)[1] == []  # once


def test_oversell_resolves_once_when_a_cancel_frees_stock() -> None:
    row, alerts = feed([*OVERSOLD, change("jd:2", "RELEASED_CANCELLED", 5, version=2, qty=2)], wm=100)
    assert summary(alerts) == [("LOW_STOCK", "RAISED"), ("OVERSELL", "RAISED"), ("OVERSELL", "RESOLVED")]
    resolved = alerts[-1]
    assert resolved["alert_id"] == alerts[1]["alert_id"] and resolved["duration_ms"] == 3 * 60_000
    assert set(row["episodes"]) == {"LOW_STOCK"}


def test_unknown_stock_raises_nothing() -> None:
    row, alerts = feed(OVERSOLD[1:], wm=100)
    assert alerts == [] and row["episodes"] == {}


def test_a_lost_movement_raises_stock_divergence_after_the_threshold_not_before() -> None:
    facts = [snapshot("HZ01", 20, 0), movement("HZ01", -2, 1, eid="a"), snapshot("HZ01", 15, 5)]
    row, alerts = feed(facts, wm=14.9)
    assert alerts == [] and list(row["episodes"]) == ["STOCK_DIVERGENCE|HZ01"]
    row, raised = rules.raise_due(row, lambda s: int(at(15).timestamp() * 1000), NOW, CONFIG)
    assert summary(raised) == [("STOCK_DIVERGENCE", "RAISED")]
    assert raised[0]["details"] == {"warehouse": "HZ01", "gap": "-3", "on_hand": "15"}


def test_a_late_movement_within_the_threshold_raises_nothing() -> None:
    facts = [snapshot("HZ01", 20, 0), snapshot("HZ01", 15, 5), movement("HZ01", -5, 3, eid="late")]
    row, alerts = feed(facts, wm=14)
    assert alerts == [] and row["episodes"] == {}


def test_guard_locks_a_channel_selling_past_its_share_once_per_window() -> None:
    config = Config(guard_share=0.5, guard_window_ms=3_600_000)
    facts = [
        snapshot("HZ01", 10, 0),
        change("douyin:7", "RESERVED", 1, version=1, qty=3, paid=1),
        change("douyin:8", "RESERVED", 2, version=1, qty=2, paid=2),  # 5 > 0.5 x 5 available
        change("douyin:9", "RESERVED", 3, version=1, qty=1, paid=3),
        change("jd:1", "RESERVED", 4, version=1, qty=2, paid=4),  # 2 > 0.5 x 2: jd too
    ]
    _, out = feed(facts, config)
    commands = [o for o in out if "command_id" in o]
    assert [(c["channel"], c["paid_qty_window"], c["available"]) for c in commands] == [("douyin", 5, 5), ("jd", 2, 2)]
    assert commands[0]["command_id"] == rules.command_id(SKU, "douyin", 0 + int(T0.timestamp() * 1000))
    assert commands[0]["window_hours"] == 1


def test_recovery_adopts_a_raised_alert_whose_row_was_lost_and_reraises_a_lost_alert() -> None:
    row, alerts = feed(OVERSOLD, wm=100)
    raised = next(a for a in alerts if a["rule"] == "OVERSELL")
    behind = stock.empty(SKU) | {"warehouses": row["warehouses"]}  # the row persisted before the episode
    fix = reconcile([(SKU.encode(), behind)], [raised], NOW, CONFIG)
    assert fix.to_send == []
    adopted = fix.to_store[SKU.encode()]["episodes"]["OVERSELL"]
    assert adopted["alert_id"] == raised["alert_id"] and adopted["raised"]
    fix = reconcile([(SKU.encode(), row)], [], NOW, CONFIG)  # the row says raised; the topic lost it
    assert sorted(summary(fix.to_send)) == [("LOW_STOCK", "RAISED"), ("OVERSELL", "RAISED")]
    fix = reconcile([], [raised], NOW, CONFIG)  # nobody holds the SKU any more
    assert summary(fix.to_send) == [("OVERSELL", "RESOLVED")]
