"""Recovery reconciliation: exactly one RAISED and one RESOLVED per episode in effect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streams.orders.divergence import evaluate, raise_due
from streams.orders.recovery import reconcile
from streams.orders.twin import apply
from tests.streams.orders.test_twin import LINES, T0, ev

NOW = datetime(2026, 11, 12, tzinfo=UTC)


def _raised_twin() -> tuple[dict[str, Any], dict[str, Any]]:
    twin, _ = apply(None, ev("CHANNEL", "PAID", 0, lines=LINES, amount_minor=100))
    twin, _ = evaluate(twin, at_ms=0, now=NOW, default_threshold_s=600)
    twin, alerts = raise_due(twin, lambda s: int((T0 + timedelta(hours=1)).timestamp() * 1000), NOW)
    wms = next(a for a in alerts if a["rule"] == "paid_not_in_wms")
    return twin, wms


def test_raised_episode_whose_alert_was_lost_is_re_emitted_once() -> None:
    twin, _ = _raised_twin()
    fix = reconcile([(b"k", twin)], [], NOW)
    assert sorted(a["rule"] for a in fix.to_send) == sorted(e["rule"] for e in twin["episodes"])
    assert all(a["state"] == "RAISED" for a in fix.to_send)
    assert reconcile([(b"k", twin)], fix.to_send, NOW).to_send == []  # and not again


def test_alert_on_topic_but_episode_not_marked_is_marked_not_repeated() -> None:
    twin, wms = _raised_twin()
    unmarked = {**twin, "episodes": [{**e, "raised": False, "raised_at": None} for e in twin["episodes"]]}
    others = [e for e in twin["episodes"] if e["alert_id"] != wms["alert_id"]]
    fix = reconcile([(b"k", unmarked)], [wms], NOW)
    stored = fix.to_store[b"k"]
    assert next(e for e in stored["episodes"] if e["alert_id"] == wms["alert_id"])["raised"] is True
    assert {a["alert_id"] for a in fix.to_send} == set()  # the others were never raised: nothing to send
    assert len(others) == len(twin["episodes"]) - 1


def test_resolution_lost_in_a_crash_is_emitted_on_recovery() -> None:
    twin, wms = _raised_twin()
    at = int((T0 + timedelta(minutes=30)).timestamp() * 1000)
    healed, resolved = evaluate(apply(twin, ev("WMS", "ALLOCATED", 30))[0], at_ms=at, now=NOW, default_threshold_s=600)
    assert [a["alert_id"] for a in resolved] == [wms["alert_id"]]  # the row is durable, this alert was lost
    on_topic = [wms] + [{**wms, "alert_id": e["alert_id"], "rule": e["rule"]} for e in healed["episodes"]]
    fix = reconcile([(b"k", healed)], on_topic, NOW)
    assert [(a["alert_id"], a["state"]) for a in fix.to_send] == [(wms["alert_id"], "RESOLVED")]
    assert (wms["alert_id"], "RESOLVED") in fix.emitted


def test_alert_ahead_of_a_row_that_lost_its_write_is_not_resolved() -> None:
    """The RAISED reached the topic, the rows that opened and raised the episode did not: the
    row does not know the alert at all. Its events are read again after the restart and
    re-derive the same episode (same id), so resolving it now would be a false RESOLVED."""
    twin, wms = _raised_twin()
    behind, _ = apply(None, ev("CHANNEL", "PENDING_PAYMENT", -1, lines=LINES, amount_minor=100))
    fix = reconcile([(b"k", behind)], [wms], NOW)
    assert fix.to_send == [] and fix.to_store == {}
    assert (wms["alert_id"], "RAISED") in fix.emitted  # a replayed raise is not repeated
    assert any(e["alert_id"] == wms["alert_id"] for e in twin["episodes"])


def _pending_twin() -> dict[str, Any]:
    twin, _ = apply(None, ev("CHANNEL", "PAID", 0, lines=LINES, amount_minor=100))
    twin, _ = evaluate(twin, at_ms=0, now=NOW, default_threshold_s=600)
    return twin


def test_a_plain_decoded_twin_gives_the_same_deadlines() -> None:
    """The rebuild reads most rows plain (timestamps as epoch ms): same index entries."""
    from streams.orders.divergence import pending_deadlines
    from tests.helpers import CODEC

    twin = _pending_twin()
    data = CODEC.encode("OrderTwin", twin)
    whole, plain = CODEC.decode_as("OrderTwin", data), CODEC.decode_plain("OrderTwin", data)
    assert len(pending_deadlines(whole)) == 3
    assert pending_deadlines(plain) == pending_deadlines(whole)


def test_recovery_asks_for_the_whole_twin_only_when_it_may_act() -> None:
    from streams.orders.recovery import Reconciler

    pending = _pending_twin()
    raised, wms = _raised_twin()
    assert not Reconciler([], NOW).needs_whole(pending)  # nothing to send, repair or show
    assert Reconciler([], NOW).needs_whole(raised)  # its open alerts are rebuilt from it
    on_topic = [{**wms, "alert_id": e["alert_id"]} for e in pending["episodes"][:1]]
    assert Reconciler(on_topic, NOW).needs_whole(pending)  # the topic says raised: repaired
