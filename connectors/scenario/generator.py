"""Plan every order's timeline across its channel and the four subsystems, inject faults,
render the records.

Timing contract (``threshold`` = the divergence threshold the twin runs with): every step
another system must take after a fact is taken within ``gap = min(3, ceil(threshold - 1) - 1)``
whole seconds, so each expectation of ``streams.orders.rules`` is met strictly before
``threshold - 1 s`` and a normal order never raises an alert. A faulty order differs from a
normal one by exactly one missing (or wrong) fact, so exactly one expectation stays unmet;
a healed fault gets its fact ``ceil(threshold) + 2..6 s`` after the alert became due.

All times are whole seconds (the platforms print times to the second), so a payload's time
equals its record's ``at`` exactly. Two facts of one source about one order are always at
least a second apart, so the twin's "latest view" of a source is never a tie.

Timelines (seconds; ``g`` = gap, 3 for a 5 s threshold; ``H`` = heal delay ``ceil(threshold) + 2..6``;
"channel" steps are rendered natively by :mod:`connectors.scenario.channels`)::

    every order   T      channel created (not on JD, whose first record is the payment)
    unpaid        T+5..20 channel closed_unpaid (nobody else hears of it)
    paid          P=T+1..3 channel paid (Douyin: and 备货中 at P+1);  P+a oms 55 (a<=g-1);
                  P+0..g finance PAYMENT_RECEIVED;  W=P+a+1..g wms orderprocess ACCEPT
    shipped       O=W+2..8 wms deliveryorder.confirm DELIVERED (waybill, oaid);  O+b oms 95 (1<=b<=g-1);
                  O+b..g channel shipped (tracking uploaded);  O+1..g carrier 1 揽收, then +3..10 0 在途,
                  +3..15 3 签收 (S); then, where the channel has them: Shopee SHIPPED at +1..2 after
                  pick-up, received at S+1..3, finished +2..6 later
    address_change  W+1 wms deliveryorder.query (old oaid); C=+1..3 channel address (new oaid);
                  C+1..g query (new oaid); then shipped from there, to the new address
    cancelled     [W+1..3 wms PACKAGE with waybill]; X=+2..5 channel refunded; X+a oms 5; X+1..g finance
                  REFUND_POSTED; X+a+1..g wms CANCELED (or TMSCANCELED when packed)

Faults (one fact missing or wrong; ``visible_at`` -> the heal, if healed)::

    wms_never_receives                no WMS fact; visible P; heal: ACCEPT at P+H, then shipped
    carrier_never_picks_up            no carrier fact; visible O; heal: 揽收 at O+H, then the trace
    cancel_not_propagated_to_wms      no WMS cancel; visible X; heal: CANCELED at X+H
    address_change_not_propagated     no query with the new oaid; visible C; heal: query at C+H, ships to
                                      the new address; unhealed: ships to the old one at C+ceil(threshold)+2..8
    finance_amount_mismatch           payment booked net of a 0.6% provider fee; visible at that posting;
                                      heal: a corrective PAYMENT_RECEIVED of the paid amount at +H
    tracking_not_uploaded_to_channel  no channel "shipped" (nor anything after it); visible O; heal: it at O+H

Channels (``channels=``, see :mod:`connectors.scenario.platforms` for why): each order is
placed on a channel drawn from the seed with :data:`~connectors.scenario.platforms.CHANNEL_WEIGHTS`.
Taobao orders are rendered exactly as the Taobao-only generator did, so the default
(``channels=("taobao",)``) output is byte-identical to it. A profile the order's channel
cannot carry becomes ``shipped`` (``address_change`` off Taobao, ``unpaid`` on JD); a fault
is only put on an order whose channel can carry it. Shopee and Shopify orders have no OMS or
WMS record (those systems cannot name them): they are paid, shipped by the carrier and booked
by finance; a cancelled one is closed within ``g`` of its payment (Shopee: IN_CANCEL, then
CANCELLED a second later); every other paid one raises ``paid_not_in_oms`` and
``paid_not_in_wms`` at ``P + threshold``, which the ground truth lists with the kinds of
:data:`~connectors.scenario.model.STRUCTURAL_RULES`. Such orders are placed away from outages
(when a channel the subsystems can name is also chosen), so those alerts are due on time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.scenario import channels as ch
from connectors.scenario import payloads as p
from connectors.scenario.model import (
    CHANNELS,
    FAULT_KINDS,
    FAULT_RULES,
    PROFILES,
    SOURCE_OUTAGE,
    SOURCE_STALE,
    STRUCTURAL_RULES,
    SUBSYSTEMS,
    InjectedFault,
    Outage,
    Scenario,
    ScenarioRecord,
)
from connectors.scenario.platforms import ATTRIBUTABLE, CHANNEL_WEIGHTS, can_carry

# Base profile weights of the orders that carry no fault.
PROFILE_WEIGHTS: dict[str, int] = {"shipped": 78, "address_change": 7, "cancelled": 10, "unpaid": 5}
assert tuple(PROFILE_WEIGHTS) == PROFILES

MAX_GAP_S = 3  # the "fast" delay between a fact and the reaction it expects
HEAL_EXTRA_S = (2, 6)  # a healed fault is repaired at visible_at + ceil(threshold) + 2..6 s
CRITICAL_MARGIN_S = 2  # faulty orders keep this far from outages around their critical window
MAX_PAY_DELAY_S = 3  # an order is paid 1..3 s after it is created
DEFAULT_CHANNELS: tuple[str, ...] = ("taobao",)


def _s(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


@dataclass
class _Plan:
    """One order's records and, for a faulty order, its fault."""

    identity: p.OrderIdentity
    profile: str
    records: list[tuple[datetime, str, bytes, bytes]] = field(default_factory=list)
    last: dict[str, datetime] = field(default_factory=dict)
    fault: InjectedFault | None = None
    structural: list[InjectedFault] = field(default_factory=list)  # alerts its channel always raises

    def emit(self, at: datetime, source: str, key: bytes, doc: dict[str, Any]) -> None:
        previous = self.last.get(source)
        if previous is not None and at <= previous:  # a bug in a timeline below, never data
            raise AssertionError(f"{self.identity.order_id}: {source} fact at {at} not after {previous}")
        self.last[source] = at
        self.records.append((at, source, key, p.dumps(doc)))

    def critical_window(self, threshold: timedelta) -> tuple[datetime, datetime]:
        """From creation to when the fault's alert has been raised (and healed): no outage may
        touch it, or the alert would be held back or the fault's facts delayed."""
        assert self.fault is not None
        end = self.fault.heals_at or self.fault.visible_at + threshold
        return self.identity.created, end


class _Timeline:
    """Renders an order's facts (each ``emit`` is one raw record of one source).

    The OMS and WMS methods do nothing for an order the subsystems cannot name (Shopee,
    Shopify): the timeline below stays one for every channel, and draws the same delays.
    """

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.o = plan.identity
        self.named = self.o.channel in ATTRIBUTABLE
        self.view = ch.ChannelState(self.o.addresses[0])
        self.pay_time: datetime | None = None
        self.wms_created: datetime | None = None
        self.trace: list[tuple[str, datetime]] = []
        self.postings = 0

    def has(self, step: str) -> bool:
        return step in ch.CHANNEL_STEPS[self.o.channel]

    def channel(self, at: datetime, step: str) -> None:
        doc = ch.render(self.o, self.view, step, at)
        self.plan.emit(at, self.o.channel, ch.record_key(self.o), doc)

    def pay(self, at: datetime) -> None:
        self.pay_time = at
        self.channel(at, "paid")
        if self.has("stocking"):  # Douyin: 105 已支付, then 备货中 once the risk check passed
            self.channel(at + _s(1), "stocking")

    def after_delivery(self, picked: datetime, signed: datetime, r: Any) -> None:
        """The channel's own steps after the parcel left, where it has them (none on Taobao)."""
        last = self.view.when("shipped")
        if last is None:
            return  # the channel never showed the shipment (an unhealed tracking fault)
        last = self.view.at or last
        if self.has("picked_up"):
            last = max(picked, last) + _s(r(1, 2))
            self.channel(last, "picked_up")
        if self.has("received"):
            last = max(signed, last) + _s(r(1, 3))
            self.channel(last, "received")
        if self.has("finished"):
            last = max(signed, last) + _s(r(2, 6))
            self.channel(last, "finished")

    def oms(self, at: datetime, status: int) -> None:
        assert self.pay_time is not None
        if not self.named:
            return
        doc = p.oms_trade(self.o, at, status, pay_time=self.pay_time)
        self.plan.emit(at, "oms", self.o.trade_no.encode(), doc)

    def wms_process(self, at: datetime, status: str, *, waybill: bool = False) -> None:
        if not self.named:
            return
        self.wms_created = self.wms_created or at
        doc = p.wms_process(self.o, at, status, waybill=waybill)
        self.plan.emit(at, "wms", self.o.delivery_order_code.encode(), doc)

    def wms_query(self, at: datetime, address: p.Address) -> None:
        assert self.wms_created is not None
        doc = p.wms_query(self.o, at, address=address, created=self.wms_created)
        self.plan.emit(at, "wms", self.o.delivery_order_code.encode(), doc)

    def wms_delivered(self, at: datetime, address: p.Address) -> None:
        if not self.named:
            return
        doc = p.wms_delivered(self.o, at, address=address)
        self.plan.emit(at, "wms", self.o.delivery_order_code.encode(), doc)

    def carrier(self, at: datetime, state: str) -> None:
        self.trace.append((state, at))
        doc = p.carrier_push(self.o, list(self.trace), address=self.view.address)
        self.plan.emit(at, "carrier", self.o.tracking_no.encode(), doc)

    def finance(self, at: datetime, biz_type: str, amount: Any, memo: str) -> None:
        self.postings += 1
        doc = p.finance_posting(self.o, at, biz_type, posting=self.postings, amount=amount, memo=memo)
        self.plan.emit(at, "finance", p.finance_key(doc), doc)


def _fault(kind: str, o: p.OrderIdentity, visible_at: datetime, heals_at: datetime | None) -> InjectedFault:
    return InjectedFault(kind, o.order_id, FAULT_RULES[kind], o.order_id, visible_at, heals_at)


def _structural(o: p.OrderIdentity, paid: datetime) -> list[InjectedFault]:
    return [InjectedFault(kind, o.order_id, rule, o.order_id, paid, None) for kind, rule in STRUCTURAL_RULES.items()]


def plan_order(
    identity: p.OrderIdentity, profile: str, *, heal: bool, gap: int, threshold_s: int, rng: random.Random
) -> _Plan:
    """The order's timeline for a profile (PROFILES) or a fault kind (FAULT_KINDS).

    ``gap`` bounds every expected reaction, ``threshold_s`` is the threshold rounded up.
    """
    if profile not in PROFILES and profile not in FAULT_KINDS:
        raise ValueError(f"unknown profile {profile!r}")
    if not can_carry(identity.channel, profile):
        raise ValueError(f"an order on {identity.channel} cannot carry {profile!r}")
    plan = _Plan(identity, profile)
    tl = _Timeline(plan)
    r = rng.randint
    visible: datetime | None = None
    heals: datetime | None = None

    def heal_at(since: datetime) -> datetime:
        return since + _s(threshold_s + r(*HEAL_EXTRA_S))

    t0 = identity.created
    if tl.has("created"):
        tl.channel(t0, "created")
    if profile == "unpaid":  # never paid: the platform closes it; nobody else ever hears of it
        tl.channel(t0 + _s(r(5, 20)), "closed_unpaid")
        return plan

    paid = t0 + _s(r(1, 3))
    tl.pay(paid)
    oms_after = r(0, gap - 1)
    tl.oms(paid + _s(oms_after), 55)  # 已审核: allocated, the stock-out order goes to the warehouse
    posted = paid + _s(r(0, gap))
    if profile == "finance_amount_mismatch":
        visible = posted
        tl.finance(posted, "PAYMENT_RECEIVED", p.fee_deducted(identity.payment), "订单收款(误按扣除手续费后金额入账)")
        if heal:
            heals = heal_at(posted)
            tl.finance(heals, "PAYMENT_RECEIVED", identity.payment, "更正: 按订单实付金额重新入账")
    else:
        tl.finance(posted, "PAYMENT_RECEIVED", identity.payment, "订单收款")

    if profile == "wms_never_receives":
        visible = paid
        if not heal:
            plan.fault = _fault(profile, identity, visible, None)
            return plan
        heals = accepted = heal_at(paid)
    else:
        accepted = paid + _s(r(oms_after + 1, gap))  # the OMS passes it on to the warehouse
    tl.wms_process(accepted, "ACCEPT")
    wms_last = accepted

    if profile == "cancelled" and not tl.named:  # closed before the threshold: no alert at all
        asked = paid + _s(r(1, gap - 1))
        closed = asked
        if tl.has("cancel_request"):  # Shopee: IN_CANCEL, then CANCELLED
            tl.channel(asked, "cancel_request")
            closed = asked + _s(1)
        tl.channel(closed, "refunded")
        tl.finance(max(closed, posted) + _s(r(1, gap)), "REFUND_POSTED", identity.payment, "全额退款")
        return plan

    if profile in ("cancelled", "cancel_not_propagated_to_wms"):
        packed = r(0, 1) == 1
        if packed:
            wms_last = accepted + _s(r(1, 3))
            tl.wms_process(wms_last, "PACKAGE", waybill=True)
        closed = wms_last + _s(r(2, 5))
        tl.channel(closed, "refunded")  # refunded before outbound
        oms_after = r(0, gap - 1)
        tl.oms(closed + _s(oms_after), 5)
        tl.finance(closed + _s(r(1, gap)), "REFUND_POSTED", identity.payment, "全额退款")
        if profile == "cancelled":
            status = "TMSCANCELED" if packed and r(0, 1) == 1 else "CANCELED"
            tl.wms_process(closed + _s(r(oms_after + 1, gap)), status, waybill=status == "TMSCANCELED")
        else:
            visible = closed
            if heal:
                heals = heal_at(closed)
                tl.wms_process(heals, "CANCELED")
        if visible is not None:
            plan.fault = _fault(profile, identity, visible, heals)
        return plan

    wms_address = identity.addresses[0]
    ready = wms_last
    if profile in ("address_change", "address_change_not_propagated"):
        queried = accepted + _s(1)
        tl.wms_query(queried, identity.addresses[0])  # the warehouse holds the original address
        changed = queried + _s(r(1, 3))
        tl.channel(changed, "address")
        if profile == "address_change":
            ready = changed + _s(r(1, gap))
            wms_address = identity.addresses[1]
            tl.wms_query(ready, wms_address)
        else:
            visible = changed
            if heal:
                heals = ready = heal_at(changed)
                wms_address = identity.addresses[1]
                tl.wms_query(ready, wms_address)
            else:
                ready = changed + _s(threshold_s)  # ships to the old address after the alert

    outbound = ready + _s(r(2, 8))
    tl.wms_delivered(outbound, wms_address)
    oms_after = r(1, gap - 1)
    tl.oms(outbound + _s(oms_after), 95)  # the OMS learns of the shipment, then uploads the waybill
    uploaded = outbound + _s(r(oms_after, gap))
    if profile == "tracking_not_uploaded_to_channel":
        visible = outbound
        if heal:
            heals = heal_at(outbound)
            tl.channel(heals, "shipped")
    else:
        tl.channel(uploaded, "shipped")

    picked = outbound + _s(r(1, gap))
    if not tl.named:  # no WMS record: the channel's "shipped" is the first word of the parcel
        picked = max(picked, uploaded + _s(1))
    if profile == "carrier_never_picks_up":
        visible = outbound
        if not heal:
            plan.fault = _fault(profile, identity, visible, None)
            return plan
        heals = picked = heal_at(outbound)
    tl.carrier(picked, "1")
    in_transit = picked + _s(r(3, 10))
    tl.carrier(in_transit, "0")
    signed = in_transit + _s(r(3, 15))
    tl.carrier(signed, "3")
    tl.after_delivery(picked, signed, r)
    if visible is not None:
        plan.fault = _fault(profile, identity, visible, heals)
    if not tl.named:
        plan.structural = _structural(identity, paid)
    return plan


def _whole_second_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    value = value.astimezone(UTC)
    return value if value.microsecond == 0 else value.replace(microsecond=0) + _s(1)


def _gap_for(threshold: timedelta) -> int:
    """The largest whole-second reaction delay that is strictly below ``threshold - 1 s``."""
    gap = min(MAX_GAP_S, math.ceil(threshold.total_seconds() - 1) - 1)
    if gap < 2:
        raise ValueError(f"threshold {threshold} is too short: reactions need at least 2 s under threshold - 1 s")
    return gap


def _channels(channels: Sequence[str]) -> tuple[str, ...]:
    """The chosen channels in the canonical order (so the order given does not matter)."""
    if isinstance(channels, str):
        raise ValueError("channels must be a sequence of channel names, not one string")
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        raise ValueError(f"unknown channels {unknown}; known: {', '.join(CHANNELS)}")
    if not channels:
        raise ValueError("at least one channel is needed")
    return tuple(c for c in CHANNELS if c in set(channels))


def _outages(base: datetime, specs: Sequence[tuple[str, timedelta, timedelta]], sources: Sequence[str]) -> list[Outage]:
    out = []
    for source, offset, duration in specs:
        if source not in sources:
            raise ValueError(f"unknown outage source {source!r}; known: {', '.join(sources)}")
        if offset < timedelta(0) or duration <= timedelta(0):
            raise ValueError(f"outage of {source}: offset must be >= 0 and duration > 0")
        start = base + _s(round(offset.total_seconds()))
        out.append(Outage(source, start, start + _s(max(1, round(duration.total_seconds())))))
    return sorted(out, key=lambda o: (o.start, o.source))


def _stale_faults(outages: list[Outage], threshold: timedelta) -> list[InjectedFault]:
    """One SOURCE_STALE per outage clearly longer than the threshold (the twin's stale limit)."""
    faults = []
    for o in outages:
        length = o.end - o.start
        if length <= threshold:
            continue  # a hiccup: records arrive late, nothing is alerted
        if length < threshold + _s(2):
            raise ValueError(f"outage of {o.source} lasts {length}: too close to the threshold to expect either way")
        faults.append(InjectedFault(SOURCE_OUTAGE, None, SOURCE_STALE, o.source, o.start, o.end))
    return faults


def _clear_of(window: tuple[datetime, datetime], outages: list[Outage]) -> bool:
    lo, hi = window[0] - _s(CRITICAL_MARGIN_S), window[1] + _s(CRITICAL_MARGIN_S)
    return all(o.end <= lo or o.start > hi for o in outages)


def draw_channels(
    seed: int, chosen: tuple[str, ...], created: Sequence[datetime], outages: list[Outage], threshold: timedelta
) -> list[str]:
    """Each order's channel, drawn from its own generator (the rest of the scenario draws
    exactly as with one channel). An order on a channel the subsystems cannot name always
    raises two alerts at ``P + threshold``; one whose window meets an outage is moved to a
    channel they can name (when one is chosen), so those alerts are due on time."""
    if len(chosen) == 1:
        return [chosen[0]] * len(created)
    rng = random.Random(f"ordertwin-scenario/{seed}/channels")
    drawn = rng.choices(chosen, [CHANNEL_WEIGHTS[c] for c in chosen], k=len(created))
    named = [c for c in chosen if c in ATTRIBUTABLE]
    for i, channel in enumerate(drawn):
        if channel in ATTRIBUTABLE or not named:
            continue
        window = (created[i], created[i] + _s(MAX_PAY_DELAY_S) + threshold)
        if not _clear_of(window, outages):
            drawn[i] = rng.choices(named, [CHANNEL_WEIGHTS[c] for c in named])[0]
    return drawn


def generate(
    *,
    seed: int,
    n_orders: int,
    start: datetime,
    span: timedelta,
    threshold: timedelta,
    fault_counts: Mapping[str, int] | None = None,
    fault_rate: float = 0.0,
    heal_share: float = 0.25,
    outages: Sequence[tuple[str, timedelta, timedelta]] = (),
    channels: Sequence[str] = DEFAULT_CHANNELS,
) -> Scenario:
    """A reproducible scenario: the same arguments give byte-identical records and faults.

    Orders are created uniformly over ``[start, start + span)``, each on one of ``channels``
    (any of :data:`~connectors.scenario.model.CHANNELS`; see the module docstring).
    ``fault_counts`` injects exactly that many faults of each kind, on distinct randomly
    chosen orders whose channel can carry the kind; on top of those, each other order gets a
    fault of a uniformly drawn kind with probability ``fault_rate`` (none if its channel
    cannot carry the kind drawn). Of the counted faults of a kind,
    ``round(heal_share * count)`` are healed; a rate-drawn fault is healed with probability
    ``heal_share``. Faulty orders are chosen away from outages (their alert must be due on
    time). ``outages`` are ``(source, offset from start, duration)`` of a chosen channel or a
    subsystem; one longer than the threshold is expected to raise SOURCE_STALE.
    """
    if n_orders < 0:
        raise ValueError("n_orders must be >= 0")
    span_s = int(span.total_seconds())
    if span_s < 1:
        raise ValueError("span must be at least one second")
    if not 0.0 <= fault_rate <= 1.0 or not 0.0 <= heal_share <= 1.0:
        raise ValueError("fault_rate and heal_share must be within [0, 1]")
    chosen = _channels(channels)
    counts = dict(fault_counts or {})
    unknown = sorted(set(counts) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    if any(n < 0 for n in counts.values()):
        raise ValueError("fault counts must be >= 0")
    for kind, n in counts.items():
        if n and not any(can_carry(c, kind) for c in chosen):
            able = ", ".join(c for c in CHANNELS if can_carry(c, kind))
            raise ValueError(f"{kind} needs one of the channels {able}; chosen: {', '.join(chosen)}")
    gap = _gap_for(threshold)
    threshold_s = math.ceil(threshold.total_seconds())
    base = _whole_second_utc(start)
    outage_list = _outages(base, outages, (*chosen, *SUBSYSTEMS))

    rng = random.Random(f"ordertwin-scenario/{seed}")
    offsets = sorted(rng.randrange(span_s) for _ in range(n_orders))
    base_profiles = rng.choices(PROFILES, [PROFILE_WEIGHTS[k] for k in PROFILES], k=n_orders)
    created = [base + _s(off) for off in offsets]
    order_channels = draw_channels(seed, chosen, created, outage_list, threshold)
    used_tids: set[int] = set()
    used_refs: set[str] = set()
    identities = [
        ch.make_identity(
            order_channels[i],
            i,
            created[i],
            random.Random(f"ordertwin-scenario/{seed}/order/{i}"),
            used_tids,
            used_refs,
        )
        for i in range(n_orders)
    ]

    def plan(i: int, profile: str, heal: bool) -> _Plan:
        timing = random.Random(f"ordertwin-scenario/{seed}/timing/{i}/{profile}/{heal}")
        return plan_order(identities[i], profile, heal=heal, gap=gap, threshold_s=threshold_s, rng=timing)

    plans: dict[int, _Plan] = {}

    def try_fault(i: int, kind: str, heal: bool) -> bool:
        if not can_carry(order_channels[i], kind):
            return False
        candidate = plan(i, kind, heal)
        if not _clear_of(candidate.critical_window(threshold), outage_list):
            return False
        plans[i] = candidate
        return True

    wanted = [(kind, n) for kind, n in ((k, counts.get(k, 0)) for k in FAULT_KINDS) if n > 0]
    candidates = list(range(n_orders))
    rng.shuffle(candidates)
    cursor = 0
    for kind, n in wanted:
        healed = math.floor(heal_share * n + 0.5)
        for j in range(n):
            while True:
                if cursor >= len(candidates):
                    raise ValueError(
                        f"not enough orders clear of outages (and on a channel that can carry it) "
                        f"for the requested faults ({kind})"
                    )
                i = candidates[cursor]
                cursor += 1
                if try_fault(i, kind, j < healed):
                    break
    for i in range(n_orders):
        draw, kind, heal_draw = rng.random(), rng.choice(FAULT_KINDS), rng.random()
        if i not in plans and draw < fault_rate:
            try_fault(i, kind, heal_draw < heal_share)
    for i in range(n_orders):
        if i not in plans:
            profile = base_profiles[i] if can_carry(order_channels[i], base_profiles[i]) else "shipped"
            plans[i] = plan(i, profile, False)

    rows = []
    for i in range(n_orders):
        for seq, (at, source, key, value) in enumerate(plans[i].records):
            rows.append((at, i, seq, ScenarioRecord(at, source, key, value, identities[i].order_id)))
    rows.sort(key=lambda row: row[:3])
    faults = [pl.fault for pl in plans.values() if pl.fault is not None] + _stale_faults(outage_list, threshold)
    faults += [f for pl in plans.values() for f in pl.structural]
    faults.sort(key=lambda f: (f.visible_at, f.rule, f.subject))
    return Scenario(
        seed=seed,
        records=[row[3] for row in rows],
        faults=faults,
        outages=outage_list,
        orders=[o.order_id for o in identities],
        profiles={identities[i].order_id: plans[i].profile for i in range(n_orders)},
        threshold=threshold,
        channels=chosen,
    )
