"""Raw payloads of one scenario order, per source, in each platform's own shape.

- taobao: TOP ``Trade`` objects as ``taobao.trades.sold.increment.get`` returns them (the
  shape of ``tests/fixtures/taobao`` and ``connectors.taobao.simulator``); key ``tid``.
  The other channels' native orders are rendered by :mod:`connectors.scenario.channels`.
- oms: 旺店通旗舰版 ``sales.TradeQuery.queryWithDetail`` orders; key ``trade_no``. The channel
  is ``platform_id`` (平台代码表) and ``src_tids``/``detail_list[].src_tid`` its order id.
- wms: Qimen calls as the WMS connector envelopes them (``orderprocess.report``,
  ``deliveryorder.confirm``, the ``deliveryorder.query`` response); key ``deliveryOrderCode``.
  The channel order travels in ``extendProps`` (or ``sourcePlatformCode``/``sourceOrderCode``
  for the query), a Taobao address as TOP's ``oaid`` so its fingerprint equals the channel's.
- carrier: Kuaidi100 subscription pushes (``param`` as the JSON text Kuaidi100 posts) with the
  callback URL's ``query.order_id``; key the waybill number ``nu``.
- finance: ordertwin's ledger postings (channel, platform order no, payment provider and
  the provider's trade number); key ``<voucher_no>/<entry_no>``.

Every time in a payload is the record's event time, printed in Beijing time to the second.
Personal data is only ever in the platforms' masked style (``张**``, ``138****1234``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any

from connectors.scenario.platforms import ACCOUNTS, OMS_PLATFORM_ID, QIMEN_PLATFORM_CODE, SHOPS

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
CENT = Decimal("0.01")
SELLER_NICK = "ordertwin旗舰店"
QIMEN_CUSTOMER_ID = "c1762790000"
QIMEN_APP_KEY = "23456789"


def china(at: datetime) -> str:
    """Aware time -> 'YYYY-MM-DD HH:MM:SS' Beijing time (TOP, Qimen, 旺店通, Kuaidi100)."""
    return at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def epoch_ms_text(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def money4(value: Decimal) -> str:
    """旺店通 amounts: Decimal(19,4) printed with four decimals."""
    return str(value.quantize(Decimal("0.0001")))


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON, key order kept: the same bytes for the same scenario."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- catalogue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    title: str
    price: str
    num_iid: int
    sku_id: int
    outer_sku_id: str  # merchant SKU code: the SKU every system agrees on
    props: str
    weight_kg: str


CATALOGUE: tuple[Product, ...] = (
    Product("保温杯 500ml 不锈钢", "89.00", 612345678901, 4987654321001, "CUP-500-BLK", "颜色分类:黑色", "0.45"),
    Product("保温杯 500ml 不锈钢", "89.00", 612345678901, 4987654321002, "CUP-500-WHT", "颜色分类:白色", "0.45"),
    Product("纯棉T恤 男款", "128.00", 623456789012, 4987654322001, "TEE-M-NAVY", "颜色:藏青;尺码:M", "0.25"),
    Product("纯棉T恤 男款", "128.00", 623456789012, 4987654322002, "TEE-L-NAVY", "颜色:藏青;尺码:L", "0.27"),
    Product("蓝牙耳机 降噪", "299.00", 634567890123, 4987654323001, "EAR-ANC-01", "颜色分类:曜石黑", "0.20"),
    Product("手冲咖啡豆 250g", "68.50", 645678901234, 4987654324001, "BEAN-250-ETH", "产地:埃塞俄比亚", "0.28"),
    Product("帆布托特包", "45.90", 656789012345, 4987654325001, "BAG-TOTE-NAT", "颜色分类:原色", "0.30"),
    Product("机械键盘 87键", "459.00", 667890123456, 4987654326001, "KB-87-RED", "轴体:红轴", "1.10"),
)

# (receiver_state, receiver_city, receiver_district, receiver_zip)
PLACES: tuple[tuple[str, str, str, str], ...] = (
    ("浙江省", "杭州市", "西湖区", "310000"),
    ("上海", "上海市", "浦东新区", "200120"),
    ("广东省", "深圳市", "南山区", "518000"),
    ("北京", "北京市", "朝阳区", "100020"),
    ("江苏省", "南京市", "鼓楼区", "210000"),
    ("四川省", "成都市", "武侯区", "610000"),
    ("湖北省", "武汉市", "洪山区", "430070"),
)
SURNAMES = "张王李赵刘陈杨黄周吴"
MOBILE_PREFIXES = ("138", "139", "186", "135", "150", "177", "188")


@dataclass(frozen=True)
class Warehouse:
    code: str  # Qimen warehouseCode = 旺店通 warehouse_no
    city: str
    district: str
    area_code: str  # Kuaidi100 trace areaCode
    area_name: str


WAREHOUSES: tuple[Warehouse, ...] = (
    Warehouse("HZ01", "杭州市", "余杭区", "CN330110000000", "浙江,杭州市,余杭区"),
    Warehouse("SH03", "上海市", "青浦区", "CN310118000000", "上海,上海市,青浦区"),
    Warehouse("GZ02", "广州市", "白云区", "CN440111000000", "广东,广州市,白云区"),
)


@dataclass(frozen=True)
class Carrier:
    qimen: str  # Qimen logisticsCode (what the WMS reports)
    kuaidi100: str  # Kuaidi100 company code (KUAIDI100_COM maps it back to ``qimen``)
    name: str
    prefix: str  # waybill number prefix
    digits: int


CARRIERS: tuple[Carrier, ...] = (
    Carrier("ZTO", "zhongtong", "中通快递", "7", 13),
    Carrier("YTO", "yuantong", "圆通速递", "YT", 13),
    Carrier("SF", "shunfeng", "顺丰速运", "SF", 13),
    Carrier("YUNDA", "yunda", "韵达快递", "43", 13),
    Carrier("STO", "shentong", "申通快递", "77", 12),
)


# --- one order's identity ------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    oid: int
    product: Product
    num: int
    discount: Decimal  # in the order's currency
    # Other channels than Taobao: the platform's line id, item id and SKU id as it prints
    # them, and the unit price in the order's currency ("" / None: Taobao's own, in CNY).
    line_id: str = ""
    goods_id: str = ""
    sku_ref: str = ""
    unit_price: Decimal | None = None

    @property
    def price(self) -> Decimal:
        return Decimal(self.product.price) if self.unit_price is None else self.unit_price

    @property
    def src_oid(self) -> str:
        return self.line_id or str(self.oid)

    @property
    def total(self) -> Decimal:
        return self.price * self.num

    @property
    def payment(self) -> Decimal:
        return self.total - self.discount


@dataclass(frozen=True)
class Address:
    state: str
    city: str
    district: str
    zip_code: str
    oaid: str  # TOP's privacy-safe address id; changes when the address changes ("" off Taobao)


@dataclass(frozen=True)
class OrderIdentity:
    """Everything about an order that does not depend on its timeline."""

    index: int
    tid: int
    tmall: bool
    lines: tuple[Line, ...]
    post_fee: Decimal
    created: datetime
    buyer_nick: str
    buyer_open_uid: str
    receiver_name: str
    receiver_mobile: str
    addresses: tuple[Address, Address]  # the original one and the one an address change moves to
    warehouse: Warehouse
    carrier: Carrier
    tracking_no: str
    trade_from: str
    shipping_type: str
    # The channel, and (off Taobao) the platform's order id as it prints it; ``tid`` is then
    # the numeric form (a surrogate for PDD/Shopee) used only for derived document numbers.
    channel: str = "taobao"
    ref: str = ""
    currency: str = "CNY"
    region: str = "CN"  # Shopee site / Shopify shipping country
    pay_provider: str = "ALIPAY"

    @property
    def platform_order_no(self) -> str:
        return self.ref or str(self.tid)

    @property
    def order_id(self) -> str:
        return f"{self.channel}:{self.platform_order_no}"

    @property
    def total_fee(self) -> Decimal:
        return sum((ln.total for ln in self.lines), Decimal(0))

    @property
    def discount_fee(self) -> Decimal:
        return sum((ln.discount for ln in self.lines), Decimal(0))

    @property
    def payment(self) -> Decimal:
        return self.total_fee - self.discount_fee + self.post_fee

    @property
    def platform_code(self) -> str:
        """Qimen sourcePlatformCode."""
        if self.channel == "taobao":
            return "TM" if self.tmall else "TB"
        return QIMEN_PLATFORM_CODE[self.channel]

    @property
    def trade_no(self) -> str:
        return f"JY{self.created.astimezone(CHINA_TZ):%Y%m%d}{self.index + 1:06d}"

    @property
    def delivery_order_code(self) -> str:
        return f"DO{self.created.astimezone(CHINA_TZ):%Y%m%d}{self.index + 1:06d}"

    def voucher_no(self, posting: int) -> str:
        return f"JZ-{self.created.astimezone(CHINA_TZ):%Y%m}-{self.index + 1:06d}{posting}"

    @property
    def provider_trade_no(self) -> str:
        """The payment provider's trade number: Alipay ``trade_no`` (28 digits: date, 22001,
        serial) and WeChat Pay ``transaction_id`` (28 digits from 42000) in their documented
        lengths; the other providers' formats are not public and are illustrative here."""
        day = f"{self.created.astimezone(CHINA_TZ):%Y%m%d}"
        if self.pay_provider == "ALIPAY":
            return f"{day}22001{self.tid % 10**15:015d}"
        if self.pay_provider == "WECHATPAY":
            return f"4200002234{day}{self.tid % 10**10:010d}"
        prefix = {"JDPAY": "JDP", "PDDPAY": "PDD", "DOUYINPAY": "DYP", "SHOPEEPAY": "SPP"}.get(self.pay_provider, "")
        return f"{prefix}{day}{self.tid % 10**14:014d}"


def _open_uid(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "AAH" + "".join(rng.choice(alphabet) for _ in range(21))


def _address(rng: random.Random, avoid: Address | None = None) -> Address:
    place = rng.choice([p for p in PLACES if avoid is None or p[0] != avoid.state])
    return Address(*place, oaid=f"{rng.getrandbits(160):040x}")


def make_identity(index: int, created: datetime, rng: random.Random, used_tids: set[int]) -> OrderIdentity:
    """A realistic Taobao/Tmall order; ``rng`` is this order's own generator."""
    while True:
        tid = 3_000_000_000_000_000_000 + rng.randrange(10**18)  # 19 digits, < 2**63, as TOP's
        if tid not in used_tids:
            used_tids.add(tid)
            break
    tmall = rng.random() < 0.3
    n_lines = rng.choices((1, 2, 3), (70, 22, 8))[0]
    lines = []
    for i, product in enumerate(rng.sample(CATALOGUE, n_lines)):
        num = rng.choices((1, 2, 3), (80, 15, 5))[0]
        total = Decimal(product.price) * num
        discount = Decimal(rng.choice((0, 0, 0, 5, 10))) if total > 20 else Decimal(0)
        lines.append(Line(oid=tid if n_lines == 1 else tid + 1 + i, product=product, num=num, discount=discount))
    shipping_type = rng.choices(("express", "free"), (85, 15))[0]
    post_fee = Decimal(0) if shipping_type == "free" else Decimal(rng.choice((0, 0, 6, 8, 12)))
    first = _address(rng)
    carrier = rng.choice(CARRIERS)
    tracking = carrier.prefix + "".join(str(rng.randrange(10)) for _ in range(carrier.digits))
    return OrderIdentity(
        index=index,
        tid=tid,
        tmall=tmall,
        lines=tuple(lines),
        post_fee=post_fee,
        created=created,
        buyer_nick=f"{rng.choice('abcdefghijklmnopqrstuvwxyz')}**",
        buyer_open_uid=_open_uid(rng),
        receiver_name=f"{rng.choice(SURNAMES)}**",
        receiver_mobile=f"{rng.choice(MOBILE_PREFIXES)}****{rng.randrange(10000):04d}",
        addresses=(first, _address(rng, avoid=first)),
        warehouse=rng.choice(WAREHOUSES),
        carrier=carrier,
        tracking_no=tracking,
        trade_from=rng.choice(("WAP,WAP", "TAOBAO", "WAP,WAP", "JHS")),
        shipping_type=shipping_type,
    )


# --- taobao ----------------------------------------------------------------------------------------


def taobao_trade(
    o: OrderIdentity,
    at: datetime,
    status: str,
    *,
    address: Address,
    pay_time: datetime | None = None,
    consign_time: datetime | None = None,
    end_time: datetime | None = None,
) -> dict[str, Any]:
    """The TOP Trade as the platform shows it at ``at`` (``modified`` = ``at``)."""
    refund = "SUCCESS" if status == "TRADE_CLOSED" else "NO_REFUND"
    trade: dict[str, Any] = {
        "tid": o.tid,
        "status": status,
        "type": "fixed",
        "payment": money(o.payment),
        "total_fee": money(o.total_fee),
        "post_fee": money(o.post_fee),
        "discount_fee": money(o.discount_fee),
        "adjust_fee": "0.00",
        "created": china(o.created),
        "modified": china(at),
    }
    for name, value in (("pay_time", pay_time), ("consign_time", consign_time), ("end_time", end_time)):
        if value is not None:
            trade[name] = china(value)
    trade.update(
        {
            "seller_nick": SELLER_NICK,
            "buyer_nick": o.buyer_nick,
            "buyer_open_uid": o.buyer_open_uid,
            "title": SELLER_NICK,
            "trade_from": o.trade_from,
            "shipping_type": o.shipping_type,
            "receiver_name": o.receiver_name,
            "receiver_mobile": o.receiver_mobile,
            "receiver_phone": "",
            "receiver_state": address.state,
            "receiver_city": address.city,
            "receiver_district": address.district,
            "receiver_address": f"{address.state}{address.city}***",
            "receiver_zip": address.zip_code,
            "oaid": address.oaid,
            "has_buyer_message": False,
            "orders": {
                "order": [
                    {
                        "oid": ln.oid,
                        "num_iid": ln.product.num_iid,
                        "sku_id": str(ln.product.sku_id),
                        "outer_iid": ln.product.outer_sku_id.rsplit("-", 1)[0],
                        "outer_sku_id": ln.product.outer_sku_id,
                        "title": ln.product.title,
                        "sku_properties_name": ln.product.props,
                        "num": ln.num,
                        "price": ln.product.price,
                        "total_fee": money(ln.total),
                        "discount_fee": money(ln.discount),
                        "adjust_fee": "0.00",
                        "payment": money(ln.payment),
                        "divide_order_fee": money(ln.payment),
                        "status": status,
                        "refund_status": refund,
                        "seller_type": "B" if o.tmall else "C",
                    }
                    for ln in o.lines
                ]
            },
        }
    )
    return trade


# --- oms (旺店通) ----------------------------------------------------------------------------------


def oms_trade(o: OrderIdentity, at: datetime, trade_status: int, *, pay_time: datetime) -> dict[str, Any]:
    """The ERP order at ``at``: 55 已审核 (sent to the warehouse), 95 已发货, 5 已取消."""
    platform = OMS_PLATFORM_ID[o.channel]
    shop_no, shop_name, shop_id = SHOPS[o.channel]
    shipped = trade_status == 95
    cancelled = trade_status == 5
    goods_count = sum(ln.num for ln in o.lines)
    return {
        "trade_id": 50000 + o.index,
        "trade_no": o.trade_no,
        "platform_id": platform,
        "shop_platform_id": platform,
        "sub_platform_id": 1 if o.tmall else 0,
        "warehouse_type": 1,
        "src_tids": o.platform_order_no,
        "pay_account": "",
        "trade_status": trade_status,
        "trade_type": 1,
        "delivery_term": 1,
        "freeze_reason": "",
        "refund_status": 3 if cancelled else 0,
        "fenxiao_type": 0,
        "fenxiao_nick": "",
        "trade_time": epoch_ms_text(o.created),
        "pay_time": china(pay_time),
        "buyer_nick": "",
        "receiver_name": "",
        "receiver_address": "",
        "receiver_mobile": "",
        "receiver_telno": "",
        "receiver_dtb": "",
        "bad_reason": 0,
        "logistics_no": o.tracking_no if shipped else "",
        "buyer_message": "",
        "cs_remark": "",
        "remark_flag": 0,
        "print_remark": "",
        "goods_type_count": money4(Decimal(len(o.lines))),
        "goods_count": money4(Decimal(goods_count)),
        "goods_amount": money4(o.total_fee),
        "post_amount": money4(o.post_fee),
        "other_amount": "0.0000",
        "discount": money4(o.discount_fee),
        "receivable": money4(o.payment),
        "cod_amount": "0.0000",
        "paid": money4(o.payment),
        "currency": "" if o.currency == "CNY" else o.currency,  # "" = 本位币
        "stockout_no": "",
        "trade_from": 1,
        "version_id": {55: 3, 95: 6, 5: 4}.get(trade_status, 1),
        "modified": china(at),
        "created": epoch_ms_text(o.created),
        "check_time": china(at) if trade_status == 55 else "",
        "shop_no": shop_no,
        "shop_name": shop_name,
        "warehouse_no": o.warehouse.code,
        "logistics_name": o.carrier.name if shipped else "",
        "logistics_code": o.carrier.qimen if shipped else "",
        "trade_mask": 0,
        "shop_id": shop_id,
        "warehouse_id": 0,
        "paid_amount": money4(o.payment),
        "detail_list": [
            {
                "trade_id": 50000 + o.index,
                "rec_id": 880000 + o.index * 10 + i,
                "platform_id": platform,
                "src_oid": ln.src_oid,
                "src_tid": o.platform_order_no,
                "gift_type": 0,
                "pay_status": 2,
                "refund_status": 5 if cancelled else 0,
                "guarantee_mode": 1,
                "platform_status": 80 if cancelled else (50 if shipped else 30),
                "delivery_term": 1,
                "num": money4(Decimal(ln.num)),
                "price": money4(ln.price),
                "refund_num": money4(Decimal(ln.num)) if cancelled else "0.0000",
                "order_price": money4(ln.price),
                "share_price": money4(ln.payment / ln.num),
                "adjust": "0.0000",
                "discount": money4(ln.discount),
                "share_amount": money4(ln.payment),
                "tax_rate": "0.0000",
                "goods_name": ln.product.title,
                "goods_no": ln.product.outer_sku_id.rsplit("-", 1)[0],
                "spec_name": ln.product.props,
                "spec_no": ln.product.outer_sku_id,
                "spec_code": "",
                "api_goods_name": ln.product.title,
                "api_spec_name": ln.product.props,
                "api_goods_id": ln.goods_id or str(ln.product.num_iid),
                "api_spec_id": ln.sku_ref or str(ln.product.sku_id),
                "goods_type": 1,
                "from_mask": 0,
                "remark": "",
                "weight": money4(Decimal(ln.product.weight_kg)),
                "actual_num": money4(Decimal(ln.num)),
                "paid": money4(ln.payment),
            }
            for i, ln in enumerate(o.lines)
        ],
    }


# --- wms (Qimen) -----------------------------------------------------------------------------------


def _qimen(method: str, at: datetime, part: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": f"taobao.qimen.{method}",
        "timestamp": china(at),
        "format": "json",
        "v": "2.0",
        "customerId": QIMEN_CUSTOMER_ID,
        "app_key": QIMEN_APP_KEY,
        "sign_method": "md5",
        part: body,
    }


def _receiver(o: OrderIdentity, address: Address) -> dict[str, Any]:
    info = {
        "name": o.receiver_name,
        "mobile": o.receiver_mobile,
        "province": address.state,
        "city": address.city,
        "area": address.district,
        "detailAddress": "***",
        "zipCode": address.zip_code,
    }
    if address.oaid:  # TOP orders only: the receiver's oaid as the ERP passed it on
        info["oaid"] = address.oaid
    return info


def _wms_lines(o: OrderIdentity, *, with_source: bool) -> list[dict[str, Any]]:
    out = []
    for i, ln in enumerate(o.lines):
        line: dict[str, Any] = {
            "orderLineNo": str(i + 1),
            "ownerCode": "OWNER01",
            "itemCode": ln.product.outer_sku_id,
            "itemId": f"W{ln.product.sku_id % 100000:05d}",
            "inventoryType": "ZP",
            "itemName": ln.product.title,
            "planQty": str(ln.num),
            "actualQty": str(ln.num),
            "batchCode": "B2026",
        }
        if with_source:
            line["sourceOrderCode"] = o.platform_order_no
        out.append(line)
    return out


def _extend(o: OrderIdentity) -> dict[str, str]:
    return {"sourcePlatformCode": o.platform_code, "sourceOrderCode": o.platform_order_no}


def wms_process(o: OrderIdentity, at: datetime, status: str, *, waybill: bool = False) -> dict[str, Any]:
    """``orderprocess.report`` (订单流水通知): ACCEPT, PACKAGE, CANCELED, TMSCANCELED, ..."""
    process: dict[str, Any] = {
        "processStatus": status,
        "operatorCode": "OP7",
        "operatorName": "仓管员",
        "operateTime": china(at),
        "operateInfo": status,
        "remark": "",
    }
    if waybill:
        process["logisticsCode"] = o.carrier.qimen
        process["expressCode"] = o.tracking_no
    body = {
        "order": {
            "orderCode": o.delivery_order_code,
            "orderId": f"WMS-OUT-{o.index + 1:06d}",
            "orderType": "JYCK",
            "warehouseCode": o.warehouse.code,
        },
        "process": process,
        "extendProps": _extend(o),
    }
    return _qimen("orderprocess.report", at, "request", body)


def wms_query(o: OrderIdentity, at: datetime, *, address: Address, created: datetime) -> dict[str, Any]:
    """``deliveryorder.query`` response: the delivery order as the warehouse holds it (ACCEPT)."""
    body = {
        "flag": "success",
        "code": "0",
        "message": "",
        "totalLines": len(o.lines),
        "deliveryOrder": {
            "deliveryOrderCode": o.delivery_order_code,
            "warehouseCode": o.warehouse.code,
            "orderType": "JYCK",
            "status": "ACCEPT",
            "sourcePlatformCode": o.platform_code,
            "operateTime": china(at),
            "createTime": china(created),
            "receiverInfo": _receiver(o, address),
        },
        "orderLines": {"orderLine": _wms_lines(o, with_source=True)},
    }
    return _qimen("deliveryorder.query", at, "response", body)


def wms_delivered(o: OrderIdentity, at: datetime, *, address: Address) -> dict[str, Any]:
    """``deliveryorder.confirm`` DELIVERED (发货完成) with the parcel's waybill."""
    weight = sum((Decimal(ln.product.weight_kg) * ln.num for ln in o.lines), Decimal(0)) + Decimal("0.05")
    body = {
        "deliveryOrder": {
            "deliveryOrderCode": o.delivery_order_code,
            "deliveryOrderId": f"WMS-OUT-{o.index + 1:06d}",
            "warehouseCode": o.warehouse.code,
            "orderType": "JYCK",
            "status": "DELIVERED",
            "outBizCode": f"MSG-{o.index + 1:06d}-DELIVERED",
            "confirmType": 0,
            "operateTime": china(at),
            "operatorCode": "OP7",
            "operatorName": "仓管员",
            "orderConfirmTime": china(at),
            "logisticsCode": o.carrier.qimen,
            "expressCode": o.tracking_no,
            "receiverInfo": _receiver(o, address),
        },
        "orderLines": _wms_lines(o, with_source=False),
        "extendProps": _extend(o),
        "packages": {
            "package": [
                {
                    "logisticsCode": o.carrier.qimen,
                    "logisticsName": o.carrier.name,
                    "expressCode": o.tracking_no,
                    "packageCode": "P1",
                    "weight": money(weight),
                    "items": {
                        "item": [{"itemCode": ln.product.outer_sku_id, "quantity": str(ln.num)} for ln in o.lines]
                    },
                }
            ]
        },
    }
    return _qimen("deliveryorder.confirm", at, "request", body)


# --- carrier (Kuaidi100) ---------------------------------------------------------------------------

# Kuaidi100 lastResult.state of each push we send: 1 揽收, 0 在途, 3 签收.
CARRIER_STAGES: tuple[str, ...] = ("1", "0", "3")


def _trace_step(o: OrderIdentity, state: str, at: datetime, address: Address) -> dict[str, str]:
    wh = o.warehouse
    if state == "1":
        context, area_code, area_name, status = (
            f"【{wh.city}】【{wh.district}】 快件已揽收",
            wh.area_code,
            wh.area_name,
            "揽收",
        )
    elif state == "0":
        context, area_code, area_name, status = (
            f"【{wh.city}】快件已发往 {address.city}转运中心",
            "",
            address.city,
            "在途",
        )
    else:
        context, area_code, area_name, status = (
            f"【{address.city}】快件已签收，感谢使用{o.carrier.name}",
            "",
            address.city,
            "签收",
        )
    return {
        "context": context,
        "time": china(at),
        "ftime": china(at),
        "areaCode": area_code,
        "areaName": area_name,
        "status": status,
    }


def carrier_push(o: OrderIdentity, trace: list[tuple[str, datetime]], *, address: Address) -> dict[str, Any]:
    """One Kuaidi100 push carrying the whole trace so far (``trace`` oldest first)."""
    state, _ = trace[-1]
    signed = state == "3"
    param = {
        "status": "shutdown" if signed else "polling",
        "billstatus": "",
        "message": "",
        "autoCheck": "0",
        "comOld": "",
        "comNew": "",
        "lastResult": {
            "message": "ok",
            "nu": o.tracking_no,
            "ischeck": "1" if signed else "0",
            "condition": "00",
            "com": o.carrier.kuaidi100,
            "status": "200",
            "state": state,
            "data": [_trace_step(o, s, at, address) for s, at in reversed(trace)],
        },
    }
    return {"query": {"order_id": o.order_id}, "param": json.dumps(param, ensure_ascii=False)}


# --- finance -----------------------------------------------------------------------------------------


def fee_deducted(amount: Decimal) -> Decimal:
    """The amount net of a 0.6% payment service fee (Alipay's and WeChat Pay's standard rate;
    the classic booking mistake, whatever the provider)."""
    fee = max(CENT, (amount * Decimal("0.006")).quantize(CENT, rounding=ROUND_DOWN))
    return amount - fee


def finance_posting(
    o: OrderIdentity, at: datetime, biz_type: str, *, posting: int, amount: Decimal, memo: str
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "voucher_no": o.voucher_no(posting),
        "entry_no": 1,
        "biz_type": biz_type,
        "channel": o.channel,
        "platform_order_no": o.platform_order_no,
        "amount": money(amount),
        "currency": o.currency,
        "posted_at": china(at),
        "pay_provider": o.pay_provider,
        "provider_trade_no": o.provider_trade_no,
        "refund_no": f"RF{o.provider_trade_no[-16:]}" if biz_type == "REFUND_POSTED" else None,
        "account": ACCOUNTS.get(o.channel) or ("1122-应收账款-天猫" if o.tmall else "1122-应收账款-淘宝"),
        "memo": memo,
    }
    if biz_type == "REFUND_POSTED":
        doc["order_amount"] = money(o.payment)
    return doc


def finance_key(doc: dict[str, Any]) -> bytes:
    return f"{doc['voucher_no']}/{doc['entry_no']}".encode()
