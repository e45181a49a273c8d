"""WMS (Alibaba Qimen 奇门 ERP<->WMS standard messages) -> OrderEvent / InventoryEvent.

Raw record (the WMS connector's envelope around one Qimen call, as received)::

    {"method": "taobao.qimen.deliveryorder.confirm",   # Qimen system parameter `method`
     "timestamp": "2026-11-11 10:00:00",                 # Qimen system parameter `timestamp`
     "request": {...}}                                   # business body (WMS -> ERP calls)
     # or "response": {...} for the ERP -> WMS queries the connector polls

The discriminator is ``method`` (with or without the ``taobao.qimen.`` prefix), see
``WMS_ORDER_MESSAGE`` / ``WMS_STOCK_MESSAGE``; anything else is rejected UNSUPPORTED.
Field names and enumerations are Qimen's (TOP ``taobao.qimen.*`` docs; SDK models
``DeliveryOrder``, ``Package``, ``OrderLine``, ``Process``, ``ReturnOrder``, ``Item``):

- ``deliveryorder.confirm`` (发货单确认, WMS -> ERP) and ``deliveryorder.query`` (发货单查询
  response): ``deliveryOrder{deliveryOrderCode, warehouseCode, orderType, status,
  confirmType, operateTime, orderConfirmTime, logisticsCode, expressCode, receiverInfo}``,
  ``packages[{logisticsCode, expressCode}]``, ``orderLines[{itemCode, planQty, actualQty,
  sourceOrderCode}]`` -> OrderEvent with warehouse, carrier, tracking number, lines and
  the address fingerprint of ``receiverInfo`` (the address the WMS ships to).
- ``orderprocess.report`` (订单流水通知): ``order{orderCode, orderType, warehouseCode}``,
  ``process{processStatus, operateTime, logisticsCode, expressCode}`` -> OrderEvent.
- ``returnorder.confirm`` (退货入库单确认): ``returnOrder{returnOrderCode, warehouseCode,
  orderType THRK/HHRK, orderConfirmTime}``, ``orderLines[{itemCode, planQty, actualQty}]``
  -> OrderEvent RETURNED (the warehouse received the goods back).
- ``stockchange.report`` (库存异动通知): ``items[{warehouseCode, orderCode, orderType,
  itemCode, inventoryType, quantity (signed: 商品变化量,可为正为负), changeTime}]`` ->
  InventoryEvent MOVEMENT per (warehouse, SKU, document), sign checked against the type.
- ``inventory.report`` (库存盘点通知): ``{warehouseCode, checkOrderCode, checkTime,
  adjustType, items[{itemCode, inventoryType, quantity (盘盈为正, 盘亏为负)}]}`` ->
  InventoryEvent MOVEMENT ADJUSTMENT.
- ``inventory.query`` (库存查询 response): ``items[{warehouseCode, itemCode, inventoryType,
  quantity (未冻结), lockQuantity (冻结)}]`` -> InventoryEvent SNAPSHOT, on hand =
  quantity + lockQuantity summed over the SKU's batches, as of the query's ``timestamp``.

Stock moves come from ``stockchange.report`` / ``inventory.report`` only; document
confirmations (delivery, return) report the order's lifecycle, so no move is counted twice.
Only sellable stock (``inventoryType`` ZP 正品, Qimen's default) is tracked.

Channel order convention. Qimen messages name the ERP's documents; the merchant's ERP
passes the channel order to the WMS and the WMS echoes it back:

- ``extendProps.sourcePlatformCode`` (a Qimen 订单来源平台编码, see ``QIMEN_PLATFORM``) and
  ``extendProps.sourceOrderCode`` (the platform order id; comma-separated when the ERP
  merged several channel orders into one delivery order), on the request for order
  messages and on each item for order-linked stock moves;
- failing those, the documented Qimen fields ``deliveryOrder.sourcePlatformCode`` /
  ``returnOrder.sourcePlatformCode`` and ``orderLines[].sourceOrderCode`` (交易平台订单).

A message without them is rejected MISSING_FIELD. Lines are attributed to channel orders
by ``orderLines[].sourceOrderCode``; with several channel orders and an unattributed line
the events carry no lines (status facts stay valid, the lines comparison is skipped).

Exceptions and refusals: warehouse exceptions and failed cancellations (EXCEPTION,
CANCELEDFAIL) keep the certain floor ALLOCATED (the WMS holds the order) with the raw
status; TMSCANCELFAILED (快递拦截失败) and REFUSE (客户拒签) keep OUTBOUND (the parcel left);
TMSCANCELED (快递拦截, interception succeeded) is CANCELLED. A warehouse refusal (REJECT),
inbound receipt states on an outbound order and OTHER state no lifecycle fact and are
rejected UNSUPPORTED (``WMS_UNMAPPED_STATUS``): the twin's "paid order not in WMS"
expectation then stays unmet, which is the truth.

Known gap: InventoryEvent has an ``order_id`` field, but the dispatcher routes any dict
with ``order_id`` to OrderEvent, so order-linked moves validate their channel order (and
use it in the event id) without writing it; see ``_subsystem.inventory_event``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from streams.normalise import fields as f
from streams.normalise.model import (
    INVALID_VALUE,
    MISSING_FIELD,
    UNKNOWN_STATUS,
    UNSUPPORTED,
    Context,
    RawRecord,
    Reject,
)
from streams.normalise.sources import _subsystem as sub

SOURCE = "wms"
SYSTEM = "WMS"
METHOD_PREFIX = "taobao.qimen."

# Qimen method -> kind of message. Order messages give OrderEvents, stock messages InventoryEvents.
WMS_ORDER_MESSAGE: dict[str, str] = {
    "deliveryorder.confirm": "delivery",  # 发货单确认接口
    "deliveryorder.query": "delivery",  # 发货单查询接口 (response)
    "orderprocess.report": "process",  # 订单流水通知接口
    "returnorder.confirm": "return",  # 退货入库单确认接口
}
WMS_STOCK_MESSAGE: dict[str, str] = {
    "stockchange.report": "stockchange",  # 库存异动通知接口
    "inventory.report": "stocktake",  # 库存盘点通知接口
    "inventory.query": "snapshot",  # 库存查询接口 (response)
}

# 订单来源平台编码 (Qimen sourcePlatformCode) -> channel. Qimen has no code for Shopee or
# Shopify (they travel as OTHERS), so those orders cannot be attributed and are rejected.
QIMEN_PLATFORM: dict[str, str] = {
    "TB": "taobao",  # 淘宝
    "TM": "taobao",  # 天猫 (same TOP platform)
    "JD": "jd",  # 京东
    "PDD": "pdd",  # 拼多多
    "DY": "douyin",  # 抖音
    "DYXD": "douyin",  # 抖音小店 (older code list)
    "KS": "kuaishou",  # 快手
}

# deliveryOrder.status (出库单状态) -> (canonical status, partial).
WMS_DELIVERY_STATUS: dict[str, tuple[str, bool]] = {
    "NEW": ("ALLOCATED", False),  # 未开始处理 (the WMS holds the order)
    "ACCEPT": ("ALLOCATED", False),  # 仓库接单
    "PARTDELIVERED": ("OUTBOUND", True),  # 部分发货完成
    "DELIVERED": ("OUTBOUND", False),  # 发货完成
    "EXCEPTION": ("ALLOCATED", False),  # 异常 (still in the warehouse)
    "CANCELED": ("CANCELLED", False),  # 取消 (cancelled in the warehouse)
    "CLOSED": ("CANCELLED", False),  # 关闭 (closed without shipping)
    "CANCELEDFAIL": ("ALLOCATED", False),  # 取消失败 (the WMS still holds it)
}

# process.processStatus (单据状态) of an outbound order -> (canonical status, partial).
WMS_PROCESS_STATUS: dict[str, tuple[str, bool]] = {
    "NEW": ("ALLOCATED", False),  # 新增
    "ACCEPT": ("ALLOCATED", False),  # 仓库接单
    "PRINT": ("ALLOCATED", False),  # 打印
    "PICK": ("ALLOCATED", False),  # 捡货
    "CHECK": ("ALLOCATED", False),  # 复核
    "PACKAGE": ("ALLOCATED", False),  # 打包
    "WEIGH": ("ALLOCATED", False),  # 称重
    "READY": ("ALLOCATED", False),  # 待提货
    "DELIVERED": ("OUTBOUND", False),  # 已发货
    "PARTDELIVERED": ("OUTBOUND", True),  # 部分发货完成
    "EXCEPTION": ("ALLOCATED", False),  # 异常
    "CLOSED": ("CANCELLED", False),  # 关闭
    "CANCELED": ("CANCELLED", False),  # 取消
    "CANCELEDFAIL": ("ALLOCATED", False),  # 取消失败
    "TMSCANCELED": ("CANCELLED", False),  # 快递拦截 (intercepted at the carrier)
    "TMSCANCELFAILED": ("OUTBOUND", False),  # 快递拦截失败 (the parcel is on its way)
    "REFUSE": ("OUTBOUND", False),  # 客户拒签 (left the warehouse; refused at the door)
    "SIGN": ("DELIVERED", False),  # 签收
}

# Documented statuses with no lifecycle meaning for the channel order: rejected UNSUPPORTED.
WMS_UNMAPPED_STATUS: dict[str, str] = {
    "REJECT": "仓库拒单: the warehouse refused the order and does not hold it",
    "OTHER": "其他: no defined meaning",
    "PARTFULFILLED": "部分收货完成 is an inbound state; return receipts come from returnorder.confirm",
    "FULFILLED": "收货完成 is an inbound state; return receipts come from returnorder.confirm",
}

# returnOrder.orderType -> canonical status (the goods are back in the warehouse).
WMS_RETURN_TYPE: dict[str, str] = {
    "THRK": "RETURNED",  # 退货入库
    "HHRK": "RETURNED",  # 换货入库 (goods back for an exchange)
}

# Stock-change document type (单据类型) -> (reason, required sign, names a channel order?).
# Sign: -1 the change must be negative, +1 positive, 0 either.
WMS_MOVEMENT_TYPE: dict[str, tuple[str, int, bool]] = {
    "JYCK": ("OUTBOUND", -1, True),  # 一般交易出库单
    "HHCK": ("OUTBOUND", -1, True),  # 换货出库
    "BFCK": ("OUTBOUND", -1, True),  # 补发出库
    "PTCK": ("OUTBOUND", -1, False),  # 普通出库单
    "B2BCK": ("OUTBOUND", -1, False),  # B2B出库
    "DBCK": ("TRANSFER_OUT", -1, False),  # 调拨出库
    "QTCK": ("ADJUSTMENT", -1, False),  # 其他出库
    "CGTH": ("ADJUSTMENT", -1, False),  # 采购退货出库单
    "CGRK": ("RECEIPT", 1, False),  # 采购入库
    "SCRK": ("RECEIPT", 1, False),  # 生产入库
    "LYRK": ("RECEIPT", 1, False),  # 领用入库
    "CCRK": ("RECEIPT", 1, False),  # 残次品入库
    "B2BRK": ("RECEIPT", 1, False),  # B2B入库
    "DBRK": ("TRANSFER_IN", 1, False),  # 调拨入库
    "QTRK": ("ADJUSTMENT", 1, False),  # 其他入库
    "XTRK": ("RETURN", 1, True),  # 销退入库
    "THRK": ("RETURN", 1, True),  # 退货入库
    "HHRK": ("RETURN", 1, True),  # 换货入库
    "CNJG": ("ADJUSTMENT", 0, False),  # 仓内加工单
    "ZTTZ": ("ADJUSTMENT", 0, False),  # 状态调整单 (e.g. 正品 -> 残次)
}

# inventory.report adjustType (变动类型) -> reason.
WMS_STOCKTAKE_TYPE: dict[str, str] = {
    "CHECK": "ADJUSTMENT",  # 盘点
    "ADJUST": "ADJUSTMENT",  # 调整
}

# inventoryType (库存类型) -> counted as sellable on-hand stock?
WMS_INVENTORY_TYPE: dict[str, bool] = {
    "ZP": True,  # 正品
    "CC": False,  # 残次
    "JS": False,  # 机损
    "XS": False,  # 箱损
    "ZT": False,  # 在途库存
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {
    "WMS_ORDER_MESSAGE": WMS_ORDER_MESSAGE,
    "QIMEN_PLATFORM": QIMEN_PLATFORM,
    "WMS_DELIVERY_STATUS": WMS_DELIVERY_STATUS,
    "WMS_PROCESS_STATUS": WMS_PROCESS_STATUS,
    "WMS_RETURN_TYPE": WMS_RETURN_TYPE,
}

# The stock-side tables. Their golden payloads produce InventoryEvents, which the generic
# golden test cannot check yet (it reads the key of every decoded record from ``order_id``,
# a field InventoryEvent also has), so they are checked by tests/streams/normalise/test_wms.py
# against tests/fixtures/wms/expected_inventory.json, with the same contract. Merge them into
# STATUS_TABLES (and that file into expected.json) once the generic test handles InventoryEvents.
STOCK_TABLES: dict[str, Mapping[str, object]] = {
    "WMS_STOCK_MESSAGE": WMS_STOCK_MESSAGE,
    "WMS_MOVEMENT_TYPE": WMS_MOVEMENT_TYPE,
    "WMS_STOCKTAKE_TYPE": WMS_STOCKTAKE_TYPE,
    "WMS_INVENTORY_TYPE": WMS_INVENTORY_TYPE,
}

FULFILMENT_ORDER_TYPE = "JYCK"  # 一般交易出库单: the channel order's own shipment
SELLABLE = "ZP"  # Qimen's default inventoryType


# --- channel order references -------------------------------------------------------------


def _platform(code: str) -> str:
    if code not in QIMEN_PLATFORM:
        raise Reject(UNSUPPORTED, f"sourcePlatformCode {code!r:.20} is not a tracked channel")
    return QIMEN_PLATFORM[code]


def _refs(
    request: Mapping[str, Any], header: Mapping[str, Any] | None, lines: list[Mapping[str, Any]]
) -> tuple[str, list[str]]:
    """(channel, platform order ids) by the convention in the module docstring."""
    props = sub.opt_obj(request, "extendProps") or {}
    code = sub.opt_text(props, "sourcePlatformCode") or (
        sub.opt_text(header, "sourcePlatformCode") if header is not None else None
    )
    if code is None:
        raise Reject(MISSING_FIELD, "no channel: extendProps.sourcePlatformCode is missing")
    refs = sub.id_list(props["sourceOrderCode"], "extendProps.sourceOrderCode") if props.get("sourceOrderCode") else []
    for i, line in enumerate(lines):
        ref = line.get("sourceOrderCode")
        if ref not in (None, ""):
            ref = sub.ident_value(ref, f"orderLines[{i}].sourceOrderCode")
            if ref not in refs:
                refs.append(ref)
    if not refs:
        raise Reject(MISSING_FIELD, "no channel order: extendProps.sourceOrderCode is missing")
    return _platform(code), refs


def _orders(channel: str, refs: list[str]) -> list[str]:
    return [sub.order_id(channel, ref, "sourceOrderCode") for ref in refs]


def _lines_by_ref(
    raw_lines: list[Mapping[str, Any]], refs: list[str], *, returned: bool
) -> dict[str, list[dict[str, Any]]]:
    """OrderLines per platform order id; every ref gets [] when attribution is impossible."""
    by_ref: dict[str, list[dict[str, Any]]] = {ref: [] for ref in refs}
    for i, line in enumerate(raw_lines):
        sku = sub.req_text(line, "itemCode")
        plan = sub.whole(line, "planQty", required=False)
        actual = sub.whole(line, "actualQty", required=False)
        if plan is None and actual is None:
            raise Reject(MISSING_FIELD, f"orderLines[{i}] has neither planQty nor actualQty")
        for name, value in (("planQty", plan), ("actualQty", actual)):
            if value is not None and value < 0:
                raise Reject(INVALID_VALUE, f"orderLines[{i}].{name} must not be negative, got {value}")
        # Delivery lines compare with the channel's ordered quantity; return lines are what came back.
        qty = (actual if returned or plan is None else plan) or 0
        if qty == 0:
            continue  # nothing of this line was (or is to be) moved
        ref = line.get("sourceOrderCode")
        if ref in (None, ""):
            if len(refs) != 1:
                return {r: [] for r in refs}
            ref = refs[0]
        else:
            ref = sub.ident_value(ref, f"orderLines[{i}].sourceOrderCode")
        line_status = None
        if plan is not None and actual is not None and actual != plan:
            line_status = f"actualQty={actual}/planQty={plan}"
        by_ref[ref].append(
            {
                "line_id": sub.opt_text(line, "orderLineNo"),
                "sku": sku,
                "qty": qty,
                "unit_price_minor": None,
                "raw_status": line_status,
            }
        )
    return by_ref


def _address(delivery: Mapping[str, Any]) -> str | None:
    info = sub.opt_obj(delivery, "receiverInfo")
    if info is None:
        return None
    return sub.address_text(
        oaid=sub.opt_text(info, "oaid"),
        province=sub.opt_text(info, "province"),
        city=sub.opt_text(info, "city"),
        district=sub.opt_text(info, "area"),
        detail=sub.opt_text(info, "detailAddress"),
        zip_code=sub.opt_text(info, "zipCode"),
    )


def _time(doc: Mapping[str, Any], *names: str) -> datetime:
    for name in names:
        value = f.china_time(doc, name, required=False)
        if value is not None:
            return value
    raise Reject(MISSING_FIELD, f"field {names[0]!r} is missing")


def _check_fulfilment(order_type: str | None, what: str) -> None:
    if order_type is not None and order_type != FULFILMENT_ORDER_TYPE:
        raise Reject(
            UNSUPPORTED,
            f"{what} {order_type!r:.20} is not 一般交易出库单 (JYCK): not the channel order's own fulfilment",
        )


# --- order messages -------------------------------------------------------------------------


def _delivery(record: Mapping[str, Any], body: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    delivery = f.obj(body, "deliveryOrder")
    code = f.ident(delivery, "deliveryOrderCode")
    warehouse = sub.req_text(delivery, "warehouseCode")
    _check_fulfilment(sub.opt_text(delivery, "orderType"), "deliveryOrder.orderType")
    raw_status = sub.req_text(delivery, "status")
    if raw_status in WMS_UNMAPPED_STATUS:
        raise Reject(UNSUPPORTED, f"deliveryOrder.status {raw_status}: {WMS_UNMAPPED_STATUS[raw_status]}")
    if raw_status not in WMS_DELIVERY_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown Qimen deliveryOrder.status {raw_status!r:.40}")
    status, partial = WMS_DELIVERY_STATUS[raw_status]
    if sub.whole(delivery, "confirmType", required=False) == 1:
        partial = True  # 中间状态确认: one of several shipments of this delivery order
    when = _time(delivery, "operateTime", "orderConfirmTime")
    raw_lines = sub.objects(body, "orderLines", "orderLine", required=False)
    channel, refs = _refs(body, delivery, raw_lines)
    lines = _lines_by_ref(raw_lines, refs, returned=False)
    carrier = sub.opt_text(delivery, "logisticsCode")
    tracking = sub.opt_text(delivery, "expressCode")
    for package in sub.objects(body, "packages", "package", required=False):
        if sub.opt_text(package, "expressCode"):
            carrier = sub.opt_text(package, "logisticsCode") or carrier
            tracking = sub.opt_text(package, "expressCode")
            break  # the first parcel's waybill is the one channels show
    address = _address(delivery)
    return [
        sub.order_event(
            source=SOURCE,
            system=SYSTEM,
            fact=("delivery", code, order, raw_status, when.isoformat(), tracking),
            order=order,
            status=status,
            raw_status=raw_status,
            partial=partial,
            event_time=when,
            ctx=ctx,
            raw=raw,
            lines=lines[ref],
            warehouse=warehouse,
            carrier=carrier,
            tracking_no=tracking,
            address=address,
        )
        for ref, order in zip(refs, _orders(channel, refs), strict=True)
    ]


def _process(record: Mapping[str, Any], body: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    order_doc = f.obj(body, "order")
    code = f.ident(order_doc, "orderCode")
    warehouse = sub.req_text(order_doc, "warehouseCode")
    _check_fulfilment(sub.req_text(order_doc, "orderType"), "order.orderType")
    process = f.obj(body, "process")
    raw_status = sub.req_text(process, "processStatus")
    if raw_status in WMS_UNMAPPED_STATUS:
        raise Reject(UNSUPPORTED, f"processStatus {raw_status}: {WMS_UNMAPPED_STATUS[raw_status]}")
    if raw_status not in WMS_PROCESS_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown Qimen processStatus {raw_status!r:.40}")
    status, partial = WMS_PROCESS_STATUS[raw_status]
    when = sub.req_time(process, "operateTime")
    channel, refs = _refs(body, None, [])
    tracking = sub.opt_text(process, "expressCode")
    return [
        sub.order_event(
            source=SOURCE,
            system=SYSTEM,
            fact=("process", code, order, raw_status, when.isoformat()),
            order=order,
            status=status,
            raw_status=raw_status,
            partial=partial,
            event_time=when,
            ctx=ctx,
            raw=raw,
            warehouse=warehouse,
            carrier=sub.opt_text(process, "logisticsCode") if tracking else None,
            tracking_no=tracking,
        )
        for order in _orders(channel, refs)
    ]


def _return(record: Mapping[str, Any], body: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    ret = f.obj(body, "returnOrder")
    code = f.ident(ret, "returnOrderCode")
    warehouse = sub.req_text(ret, "warehouseCode")
    raw_status = sub.req_text(ret, "orderType")
    if raw_status not in WMS_RETURN_TYPE:
        raise Reject(UNKNOWN_STATUS, f"unknown Qimen returnOrder.orderType {raw_status!r:.40}")
    when = sub.req_time(ret, "orderConfirmTime")
    raw_lines = sub.objects(body, "orderLines", "orderLine")
    channel, refs = _refs(body, ret, raw_lines)
    lines = _lines_by_ref(raw_lines, refs, returned=True)
    short = False
    for line in raw_lines:
        plan = sub.whole(line, "planQty", required=False)
        actual = sub.whole(line, "actualQty", required=False)
        short = short or (plan is not None and (actual or 0) < plan)
    # The return parcel's waybill is not the order's shipment: it is not put on the event.
    return [
        sub.order_event(
            source=SOURCE,
            system=SYSTEM,
            fact=("return", code, order, raw_status, when.isoformat()),
            order=order,
            status=WMS_RETURN_TYPE[raw_status],
            raw_status=raw_status,
            partial=short,
            event_time=when,
            ctx=ctx,
            raw=raw,
            lines=lines[ref],
            warehouse=warehouse,
        )
        for ref, order in zip(refs, _orders(channel, refs), strict=True)
    ]


# --- stock messages -------------------------------------------------------------------------


def _sellable(doc: Mapping[str, Any], what: str) -> bool:
    kind = sub.opt_text(doc, "inventoryType") or SELLABLE
    if kind not in WMS_INVENTORY_TYPE:
        raise Reject(UNKNOWN_STATUS, f"{what}.inventoryType {kind!r:.20} is not a Qimen 库存类型")
    return WMS_INVENTORY_TYPE[kind]


def _none_sellable(what: str) -> Reject:
    return Reject(UNSUPPORTED, f"{what} moves only non-sellable stock (not ZP 正品), which is not tracked")


def _stockchange(
    record: Mapping[str, Any], body: Mapping[str, Any], raw: RawRecord, ctx: Context
) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str, str, str, str, str, str], int] = {}
    facts: dict[tuple[str, str, str, str, str, str, str], datetime] = {}
    for i, item in enumerate(sub.objects(body, "items", "item")):
        what = f"items[{i}]"
        warehouse = sub.req_text(item, "warehouseCode")
        sku = sub.req_text(item, "itemCode")
        order_type = sub.req_text(item, "orderType")
        if order_type not in WMS_MOVEMENT_TYPE:
            raise Reject(UNKNOWN_STATUS, f"{what}.orderType {order_type!r:.20} is not a Qimen 单据类型")
        reason, sign, order_linked = WMS_MOVEMENT_TYPE[order_type]
        quantity = sub.whole(item, "quantity")
        assert quantity is not None
        if quantity == 0 or quantity * sign < 0:
            need = {-1: "negative", 1: "positive", 0: "non-zero"}[sign]
            raise Reject(INVALID_VALUE, f"{what}.quantity {quantity} for {order_type} ({reason}) must be {need}")
        when = sub.req_time(item, "changeTime")
        document = sub.opt_text(item, "orderCode") or ""
        order = ""
        if order_linked:
            channel, refs = _refs(item, None, [])
            if len(refs) != 1:
                raise Reject(INVALID_VALUE, f"{what}: a stock move names one channel order, got {len(refs)}")
            order = _orders(channel, refs)[0]
        if not _sellable(item, what):
            continue
        key = (warehouse, sku, order_type, document, sub.opt_text(item, "outBizCode") or "", order, when.isoformat())
        totals[key] = totals.get(key, 0) + quantity
        facts[key] = when
    if not totals:
        raise _none_sellable("stockchange.report")
    events = []
    for move, quantity in totals.items():
        warehouse, sku, order_type, document = move[:4]
        if quantity == 0:
            continue  # batches of one document that cancel out: no change
        events.append(
            sub.inventory_event(
                source=SOURCE,
                fact=("stockchange", *move),
                sku=sku,
                warehouse=warehouse,
                kind="MOVEMENT",
                reason=WMS_MOVEMENT_TYPE[order_type][0],
                quantity=quantity,
                raw_type=order_type,
                movement_id=document or None,
                order_id=move[5] or None,
                event_time=facts[move],
                ctx=ctx,
                raw=raw,
            )
        )
    return events


def _stocktake(
    record: Mapping[str, Any], body: Mapping[str, Any], raw: RawRecord, ctx: Context
) -> list[dict[str, Any]]:
    warehouse = sub.req_text(body, "warehouseCode")
    check = f.ident(body, "checkOrderCode")
    when = sub.req_time(body, "checkTime")
    adjust = sub.opt_text(body, "adjustType")
    if adjust is not None and adjust not in WMS_STOCKTAKE_TYPE:
        raise Reject(UNKNOWN_STATUS, f"unknown Qimen adjustType {adjust!r:.20}")
    totals: dict[str, int] = {}
    for i, item in enumerate(sub.objects(body, "items", "item")):
        sku = sub.req_text(item, "itemCode")
        quantity = sub.whole(item, "quantity")
        assert quantity is not None
        if quantity == 0:
            raise Reject(INVALID_VALUE, f"items[{i}].quantity is 0: a stocktake line reports a gain or a loss")
        if _sellable(item, f"items[{i}]"):
            totals[sku] = totals.get(sku, 0) + quantity
    if not totals:
        raise _none_sellable("inventory.report")
    return [
        sub.inventory_event(
            source=SOURCE,
            fact=("stocktake", check, warehouse, sku, when.isoformat()),
            sku=sku,
            warehouse=warehouse,
            kind="MOVEMENT",
            reason=WMS_STOCKTAKE_TYPE[adjust or "CHECK"],  # an inventory.report is a 盘点 by definition
            quantity=quantity,
            raw_type=adjust or "inventory.report",
            movement_id=check,
            event_time=when,
            ctx=ctx,
            raw=raw,
        )
        for sku, quantity in totals.items()
        if quantity != 0
    ]


def _snapshot(record: Mapping[str, Any], body: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    flag = sub.opt_text(body, "flag")
    if flag is not None and flag != "success":
        raise Reject(UNSUPPORTED, f"inventory.query answered {flag!r:.20}: {str(body.get('message'))!r:.80}")
    when = sub.req_time(record, "timestamp")  # the query's own time: the snapshot is "as of" it
    on_hand: dict[tuple[str, str], int] = {}
    for i, item in enumerate(sub.objects(body, "items", "item")):
        warehouse = sub.req_text(item, "warehouseCode")
        sku = sub.req_text(item, "itemCode")
        free = sub.whole(item, "quantity")
        locked = sub.whole(item, "lockQuantity", required=False) or 0
        assert free is not None
        if free < 0 or locked < 0:
            raise Reject(INVALID_VALUE, f"items[{i}]: stock quantities must not be negative")
        if _sellable(item, f"items[{i}]"):
            on_hand[(warehouse, sku)] = on_hand.get((warehouse, sku), 0) + free + locked
    if not on_hand:
        raise _none_sellable("inventory.query")
    return [
        sub.inventory_event(
            source=SOURCE,
            fact=("snapshot", warehouse, sku, when.isoformat(), quantity),
            sku=sku,
            warehouse=warehouse,
            kind="SNAPSHOT",
            reason="SNAPSHOT",
            quantity=quantity,
            raw_type="inventory.query",
            event_time=when,
            ctx=ctx,
            raw=raw,
        )
        for (warehouse, sku), quantity in on_hand.items()
    ]


def normalise(record: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One Qimen message -> OrderEvents (order messages) or InventoryEvents (stock messages)."""
    method = sub.req_text(record, "method").strip()
    short = method.removeprefix(METHOD_PREFIX)
    kind = WMS_ORDER_MESSAGE.get(short) or WMS_STOCK_MESSAGE.get(short)
    if kind is None:
        raise Reject(UNSUPPORTED, f"Qimen method {method!r:.60} is not a message ordertwin maps")
    part = "response" if short.endswith(".query") else "request"
    return _HANDLERS[kind](record, f.obj(record, part), raw, ctx)


_Handler = Callable[[Mapping[str, Any], Mapping[str, Any], RawRecord, Context], list[dict[str, Any]]]
_HANDLERS: dict[str, _Handler] = {
    "delivery": _delivery,
    "process": _process,
    "return": _return,
    "stockchange": _stockchange,
    "stocktake": _stocktake,
    "snapshot": _snapshot,
}
