"""An inventory scenario as raw platform records: several channels selling the same SKUs
past what the WMS counted, some orders allocated, shipped (WMS movement + delivery
confirmation) or cancelled. Payloads are the golden fixtures of each source with the
order id, time and line swapped in, so the real normalisers read them.

The ground truth is computed from the plan alone: which SKUs get oversold (one OVERSELL
RAISED each) and which of them a cancellation brings back (RESOLVED), and the final level
per SKU and warehouse.
"""

from __future__ import annotations

import copy
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.scenario.payloads import china
from tests.helpers import FIXTURES

CHANNELS = ("taobao", "jd", "pdd")
QIMEN_CODE = {"taobao": "TB", "jd": "JD", "pdd": "PDD"}
WAREHOUSE = "HZ01"


def _fixture(source: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / source / name).read_text())
    return doc


TEMPLATES = {
    ("taobao", "paid"): _fixture("taobao", "wait_seller_send_goods.json"),
    ("taobao", "cancelled"): _fixture("taobao", "trade_closed_by_taobao.json"),
    ("jd", "paid"): _fixture("jd", "wait_seller_stock_out.json"),
    ("jd", "cancelled"): _fixture("jd", "trade_canceled.json"),
    ("pdd", "paid"): _fixture("pdd", "status_1_refund_1.json"),
    ("pdd", "cancelled"): _fixture("pdd", "cancelled.json"),
    ("wms", "accept"): _fixture("wms", "deliveryorder_confirm_accept.json"),
    ("wms", "delivered"): _fixture("wms", "deliveryorder_confirm_delivered.json"),
}


@dataclass(frozen=True)
class Sale:
    channel: str
    ref: str  # the platform's order id
    sku: str
    qty: int
    allocate: bool = False  # the WMS accepts it at HZ01
    ship: bool = False  # the WMS moves the stock out, then confirms the delivery
    cancel: bool = False  # the channel cancels it (before shipping)

    @property
    def order_id(self) -> str:
        return f"{self.channel}:{self.ref}"


@dataclass(frozen=True)
class Raw:
    source: str
    key: bytes
    value: bytes


def channel_order(sale: Sale, status: str, at: datetime) -> Raw:
    doc = copy.deepcopy(TEMPLATES[(sale.channel, status)])
    when = china(at)
    if sale.channel == "taobao":
        doc["tid"] = int(sale.ref)
        doc["modified"] = when
        line = {**doc["orders"]["order"][0], "outer_sku_id": sale.sku, "num": sale.qty, "oid": int(sale.ref) + 1}
        doc["orders"]["order"] = [line]
    elif sale.channel == "jd":
        doc["orderId"] = sale.ref
        doc["modified"] = when
        doc["itemInfoList"] = [{**doc["itemInfoList"][0], "outerSkuId": sale.sku, "itemTotal": str(sale.qty)}]
        for coupon in doc.get("couponDetailList") or []:
            coupon["orderId"] = sale.ref
    else:
        doc["order_sn"] = sale.ref
        doc["updated_at"] = when
        doc["item_list"] = [{**doc["item_list"][0], "outer_id": sale.sku, "goods_count": sale.qty}]
    return Raw(sale.channel, sale.ref.encode(), json.dumps(doc, ensure_ascii=False).encode())


def wms_order(sale: Sale, status: str, at: datetime, code: str) -> Raw:
    doc = copy.deepcopy(TEMPLATES[("wms", status)])
    request = doc["request"]
    request["deliveryOrder"].update(
        deliveryOrderCode=code, warehouseCode=WAREHOUSE, operateTime=china(at), orderConfirmTime=china(at)
    )
    request["orderLines"] = [
        {**request["orderLines"][0], "itemCode": sale.sku, "planQty": str(sale.qty), "actualQty": str(sale.qty)}
    ]
    request["extendProps"] = {"sourcePlatformCode": QIMEN_CODE[sale.channel], "sourceOrderCode": sale.ref}
    if "packages" in request:
        del request["packages"]
    return Raw("wms", f"{code}:{status}".encode(), json.dumps(doc, ensure_ascii=False).encode())


def wms_outbound_move(sale: Sale, at: datetime, code: str) -> Raw:
    item = {
        "ownerCode": "OWNER01",
        "warehouseCode": WAREHOUSE,
        "orderCode": code,
        "orderType": "JYCK",
        "outBizCode": f"SC-{code}",
        "itemCode": sale.sku,
        "inventoryType": "ZP",
        "quantity": str(-sale.qty),
        "changeTime": china(at),
        "extendProps": {"sourcePlatformCode": QIMEN_CODE[sale.channel], "sourceOrderCode": sale.ref},
    }
    doc = {"method": "taobao.qimen.stockchange.report", "timestamp": china(at), "request": {"items": [item]}}
    return Raw("wms", f"SC-{code}".encode(), json.dumps(doc).encode())


def wms_snapshot(stock: dict[str, int], at: datetime) -> Raw:
    items = [
        {"warehouseCode": WAREHOUSE, "itemCode": sku, "inventoryType": "ZP", "quantity": qty, "lockQuantity": 0}
        for sku, qty in sorted(stock.items())
    ]
    doc = {"method": "inventory.query", "timestamp": china(at), "response": {"flag": "success", "items": items}}
    return Raw("wms", f"snapshot-{at.timestamp():.0f}".encode(), json.dumps(doc).encode())


@dataclass
class InventoryScenario:
    stock: dict[str, int]  # sku -> units on hand at HZ01 (snapshot)
    sales: list[Sale]
    seed: int = 0
    codes: dict[str, str] = field(default_factory=dict)

    def code(self, sale: Sale) -> str:
        return self.codes.setdefault(sale.order_id, f"DO{len(self.codes) + 1:08d}")

    def paid_phase(self) -> dict[str, list[Sale]]:
        """Channel -> its sales in publication order (the channels publish concurrently)."""
        out: dict[str, list[Sale]] = defaultdict(list)
        for sale in self.sales:
            out[sale.channel].append(sale)
        return out

    def follow_up(self, sale: Sale, at: datetime) -> list[Raw]:
        """What comes after payment, in order: allocation, shipment (movement first), cancel."""
        out: list[Raw] = []
        if sale.allocate or sale.ship:
            out.append(wms_order(sale, "accept", at, self.code(sale)))
        if sale.ship:
            out.append(wms_outbound_move(sale, at + timedelta(seconds=1), self.code(sale)))
            out.append(wms_order(sale, "delivered", at + timedelta(seconds=1), self.code(sale)))
        if sale.cancel:
            out.append(channel_order(sale, "cancelled", at + timedelta(seconds=1)))
        return out

    # --- ground truth -------------------------------------------------------------------

    def demand(self, sku: str, *, after_cancels: bool) -> int:
        return sum(s.qty for s in self.sales if s.sku == sku and not (after_cancels and s.cancel))

    def oversold(self) -> dict[str, bool]:
        """SKU -> resolved? for every SKU that gets oversold (demand only grows until the cancels)."""
        return {
            sku: self.demand(sku, after_cancels=True) <= qty
            for sku, qty in self.stock.items()
            if self.demand(sku, after_cancels=False) > qty
        }

    def levels(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(sku, warehouse) -> (on hand, reserved) once everything is processed."""
        out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for sku, qty in self.stock.items():
            out[(sku, WAREHOUSE)][0] += qty
        for s in self.sales:
            if s.cancel:
                continue
            if s.ship:
                out[(s.sku, WAREHOUSE)][0] -= s.qty
            else:
                out[(s.sku, WAREHOUSE if s.allocate else "*")][1] += s.qty
        return {k: (v[0], v[1]) for k, v in out.items()}


def build(seed: int, orders_per_sku: int = 6) -> InventoryScenario:
    """SKUs that end oversold, oversold then healed by a cancel, exactly sold out (with
    shipments), and comfortably stocked; each sold on every channel."""
    rng = random.Random(seed)
    plan = {  # sku -> (stock, how demand compares)
        "INV-OVER": (10, "over"),
        "INV-HEAL": (8, "heal"),
        "INV-EXACT": (12, "exact"),
        "INV-PLENTY": (500, "plenty"),
    }
    sales: list[Sale] = []
    stock: dict[str, int] = {}
    serial = 0
    for sku, (units, kind) in plan.items():
        stock[sku] = units
        qtys = [rng.randint(1, 3) for _ in range(orders_per_sku)]
        total = sum(qtys)
        if kind == "over":
            qtys[-1] += max(0, units + 2 - total)  # at least two beyond stock
        elif kind == "exact":
            stock[sku] = total
        elif kind == "heal":
            stock[sku] = total - 1  # one unit short until the cancel
        for i, qty in enumerate(qtys):
            serial += 1
            channel = CHANNELS[i % len(CHANNELS)]
            ref = {
                "taobao": str(4_100_000_000_000_000 + serial),
                "jd": str(310_000_000_000 + serial),
                "pdd": f"261111-{500_000_000_000_000 + serial}",
            }[channel]
            sales.append(
                Sale(
                    channel,
                    ref,
                    sku,
                    qty,
                    allocate=i % 2 == 0,
                    ship=kind in ("exact", "plenty") and i % 3 == 0,
                    cancel=kind == "heal" and i == orders_per_sku - 1,
                )
            )
    rng.shuffle(sales)
    return InventoryScenario(stock, sales, seed)
