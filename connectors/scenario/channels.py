"""Native channel orders of a scenario order, one renderer per platform, step by step.

An order goes through *steps* on its channel; each step is one record, the order object as
the platform's order API shows it right after that step (``modified``/``update_time`` = the
record's time, so the platform's incremental pull finds it in that second):

    created         placed, not paid                 (not on JD: JOS lists paid orders only)
    paid            paid, to be shipped
    stocking        Douyin 备货中 (after 105 已支付's risk check)
    address         Taobao only: the buyer changed the address (new ``oaid``)
    shipped         our tracking number uploaded (the channel's "shipped" / 发货)
    picked_up       Shopee SHIPPED (the 3PL scanned the parcel)
    received        the platform's own "delivered" (PDD 已签收, Kuaishou 已签收, Shopee
                    TO_CONFIRM_RECEIVE, Shopify shipment_status delivered)
    finished        buyer confirmation (JD FINISHED_L, Douyin 已完成, Kuaishou 订单成功,
                    Shopee COMPLETED)
    cancel_request  Shopee IN_CANCEL
    refunded        paid, then closed by a full refund before shipping
    closed_unpaid   closed without payment

Shapes follow the normalisers' docstrings and golden fixtures (tests/fixtures/<channel>/)
and the simulators (connectors/<channel>/simulator.py):

- jd: JOS ``OrderSearchInfo`` (``jingdong.pop.order.search`` ``orderInfoList[]``); key
  ``orderId`` (12 digits); times ``YYYY-MM-DD HH:MM:SS`` Beijing.
- pdd: ``pdd.order.number.list.increment.get`` ``order_sn_list[]``; key ``order_sn``
  (``yymmdd-`` + 15 digits); times Beijing text; amounts yuan as JSON numbers; receiver
  encrypted (``~...~0~``) and masked.
- douyin: 抖店 ``order.searchList`` ``shop_order_list[]`` shop order with ``sku_order_list``;
  key ``order_id`` (19 digits); Unix seconds; amounts fen.
- kuaishou: ``open.order.cursor.list`` ``orderList[]`` (one item per order); key
  ``orderBaseInfo.oid`` (16 digits); Unix milliseconds; amounts fen.
- shopee: v2 ``get_order_detail`` ``order_list[]``; key ``order_sn`` (``yymmdd`` + 8 letters
  and digits); Unix seconds; amounts floats in the site's currency; recipient masked.
- shopify: Admin REST ``Order``; key ``id``; ISO-8601 with the shop's offset (+08:00).

Things this module could not confirm against a platform document, and which are therefore
illustrative: region ids other than those of the golden fixtures and the simulators (JD
county/town ids, PDD city/town ids, Douyin/Kuaishou street codes), the carrier code tables
(:data:`JD_LOGISTICS_ID`, :data:`PDD_LOGISTICS_ID`, :data:`KUAISHOU_EXPRESS_CODE`), the
platforms' product/SKU ids (derived per catalogue entry) and the exchange rates.
Shopee/Shopify parcels leave by EMS international, a simplification (a Shopee cross-border
parcel normally goes to the SLS consolidation warehouse first).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from connectors.scenario import payloads as p
from connectors.scenario.payloads import Address, Carrier, OrderIdentity, china, money

STEPS: tuple[str, ...] = (
    "created",
    "paid",
    "stocking",
    "address",
    "shipped",
    "picked_up",
    "received",
    "finished",
    "cancel_request",
    "refunded",
    "closed_unpaid",
)

SHOP_TZ = timezone(timedelta(hours=8))  # the merchant's Shopify store runs on Beijing time
FEN = Decimal(100)

# Extra carriers: 京东快递 for JD orders, 极兔 for the value/content platforms, EMS for export.
JD_EXPRESS = Carrier("JD", "jd", "京东快递", "JDVA", 11)
JT_EXPRESS = Carrier("JT", "jtexpress", "极兔速递", "JT", 13)
EMS_INTL = Carrier("EMS", "ems", "EMS", "E", 0)  # S10 numbers, see _s10
CHANNEL_CARRIERS: Mapping[str, tuple[Carrier, ...]] = {
    "jd": (*p.CARRIERS, JD_EXPRESS, JD_EXPRESS),
    "pdd": (*p.CARRIERS, JT_EXPRESS),
    "douyin": (*p.CARRIERS, JT_EXPRESS),
    "kuaishou": (*p.CARRIERS, JT_EXPRESS),
    "shopee": (EMS_INTL,),
    "shopify": (EMS_INTL,),
}
# Platform logistics-company codes (by Qimen code). JD/PDD/Kuaishou: illustrative, see above.
JD_LOGISTICS_ID = {"SF": "467", "YTO": "463", "ZTO": "1499", "YUNDA": "1327", "STO": "470", "JD": "2087"}
PDD_LOGISTICS_ID = {"SF": 44, "YTO": 85, "ZTO": 115, "YUNDA": 121, "STO": 1, "JT": 384}
KUAISHOU_EXPRESS_CODE = {"SF": 4, "YTO": 6, "ZTO": 8, "YUNDA": 9, "STO": 7, "JT": 52}
SHOPIFY_TRACKING_COMPANY = "China EMS (ePacket)"

# Region ids per place of payloads.PLACES (same order): (province, city, district, town).
JD_REGION: tuple[tuple[str, str, str, str], ...] = (
    ("15", "1213", "3158", "51973"),
    ("2", "2813", "51976", "0"),
    ("19", "1607", "3155", "51678"),
    ("1", "72", "2799", "0"),
    ("12", "904", "3373", "52011"),
    ("22", "1930", "3385", "52121"),
    ("17", "1381", "3582", "52270"),
)
PDD_REGION: tuple[tuple[int, int, int], ...] = (
    (12, 140, 1319),
    (2, 38, 4216),
    (6, 77, 709),
    (1, 52, 500),
    (10, 115, 1053),
    (23, 286, 2401),
    (14, 180, 1612),
)
# GB/T 2260 codes (Douyin and Kuaishou use them) and an illustrative street (code, name).
GB_REGION: tuple[tuple[str, str, str, str, str], ...] = (
    ("33", "330100", "330106", "330106004", "北山街道"),
    ("31", "310100", "310115", "310115010", "花木街道"),
    ("44", "440300", "440305", "440305007", "粤海街道"),
    ("11", "110100", "110105", "110105001", "建外街道"),
    ("32", "320100", "320106", "320106009", "宁海路街道"),
    ("51", "510100", "510107", "510107001", "浆洗街街道"),
    ("42", "420100", "420111", "420111001", "珞南街道"),
)

# Shopee sites: (region, currency, CNY -> currency rate); places (state, city, district, zip).
SHOPEE_SITES: tuple[tuple[str, str, Decimal], ...] = (
    ("SG", "SGD", Decimal("0.19")),
    ("MY", "MYR", Decimal("0.65")),
    ("PH", "PHP", Decimal("8.0")),
    ("TH", "THB", Decimal("5.0")),
)
FOREIGN_PLACES: Mapping[str, tuple[tuple[str, str, str, str], ...]] = {
    "SG": (("Singapore", "Singapore", "Central", "018989"), ("Singapore", "Singapore", "Tampines", "529510")),
    "MY": (("Kuala Lumpur", "Kuala Lumpur", "Bukit Bintang", "55100"), ("Selangor", "Petaling Jaya", "", "46000")),
    "PH": (("Metro Manila", "Makati", "Poblacion", "1210"), ("Cebu", "Cebu City", "Lahug", "6000")),
    "TH": (("Bangkok", "Bangkok", "Pathum Wan", "10330"), ("Chiang Mai", "Chiang Mai", "Mueang", "50000")),
    "US": (("CA", "San Jose", "", "95113"), ("NY", "New York", "", "10001"), ("WA", "Seattle", "", "98101")),
}
SHOPIFY_RATE = Decimal("0.14")  # CNY -> USD


def _stable(text: str) -> random.Random:
    """A generator seeded by text: the same encrypted/masked strings in every step of an order."""
    return random.Random(hashlib.sha256(text.encode()).digest())


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _token(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _s10(serial: int) -> str:
    """A UPU S10 item number (``EA123456785CN``) with its mod-11 check digit."""
    digits = f"{serial % 10**8:08d}"
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    check = 0 if check == 10 else 5 if check == 11 else check
    return f"EA{digits}{check}CN"


# --- identities -------------------------------------------------------------------------------


def _catalogue_ids(channel: str, product: p.Product) -> tuple[str, str]:
    """The platform's (item id, SKU id) of a catalogue entry (derived, illustrative)."""
    k = p.CATALOGUE.index(product)
    g = sorted({x.num_iid for x in p.CATALOGUE}).index(product.num_iid)
    base = {
        "jd": (100009870000, 100012340000),
        "pdd": (345678000, 1234560000),
        "douyin": (3660207428038970000, 3410716076201700),
        "kuaishou": (888390660000, 888390670000),
        "shopee": (1234560000, 98765430000),
        "shopify": (7890123450000, 43210987650000),
    }[channel]
    return str(base[0] + g), str(base[1] + k)


def _ref(channel: str, created: datetime, rng: random.Random) -> tuple[str, int]:
    """A new platform order id (as printed) and its numeric form."""
    day = created.astimezone(p.CHINA_TZ)
    if channel == "jd":
        n = 300_000_000_000 + rng.randrange(10**11)
        return str(n), n
    if channel == "pdd":
        serial = rng.randrange(10**15)
        return f"{day:%y%m%d}-{serial:015d}", int(f"{day:%y%m%d}{serial:015d}")
    if channel == "douyin":
        n = 6_930_000_000_000_000_000 + rng.randrange(6 * 10**15) * 10  # sku orders: n+1, n+2, ...
        return str(n), n
    if channel == "kuaishou":
        n = 2_415_900_000_000_000 + rng.randrange(8 * 10**13)
        return str(n), n
    if channel == "shopee":
        n = rng.getrandbits(40)
        return f"{day:%y%m%d}{_token(rng, 8, 'ABCDEFGHJKMNPQRSTUVWXYZ0123456789')}", n
    if channel == "shopify":
        n = 5_600_000_000_000 + rng.randrange(10**11)
        return str(n), n
    raise ValueError(f"no renderer for channel {channel!r}")


def _provider(channel: str, rng: random.Random) -> str:
    if channel == "jd":
        return "JDPAY"
    if channel == "pdd":
        return rng.choices(("WECHATPAY", "ALIPAY", "PDDPAY"), (60, 30, 10))[0]
    if channel == "douyin":
        return rng.choices(("WECHATPAY", "ALIPAY", "DOUYINPAY"), (45, 35, 20))[0]
    if channel == "kuaishou":
        return rng.choices(("WECHATPAY", "ALIPAY"), (55, 45))[0]
    return "SHOPEEPAY" if channel == "shopee" else "SHOPIFY_PAYMENTS"


def make_identity(
    channel: str, index: int, created: datetime, rng: random.Random, used_tids: set[int], used_refs: set[str]
) -> OrderIdentity:
    """A realistic order on ``channel``; ``rng`` is this order's own generator. ``used_tids``
    are the TOP tids taken so far, ``used_refs`` the other channels' ``order_id``s. Taobao
    orders are exactly :func:`connectors.scenario.payloads.make_identity`'s."""
    if channel == "taobao":
        return p.make_identity(index, created, rng, used_tids)
    while True:
        ref, number = _ref(channel, created, rng)
        if f"{channel}:{ref}" not in used_refs:
            used_refs.add(f"{channel}:{ref}")
            break
    region, currency, rate = "CN", "CNY", Decimal(1)
    if channel == "shopee":
        region, currency, rate = rng.choice(SHOPEE_SITES)
    elif channel == "shopify":
        region, currency, rate = "US", "USD", SHOPIFY_RATE
    n_lines = 1 if channel == "kuaishou" else rng.choices((1, 2, 3), (70, 22, 8))[0]
    lines = []
    for i, product in enumerate(rng.sample(p.CATALOGUE, n_lines)):
        num = rng.choices((1, 2, 3), (80, 15, 5))[0]
        unit = (Decimal(product.price) * rate).quantize(p.CENT)
        discount = Decimal(rng.choice((0, 0, 0, 5, 10))) if unit * num > 20 * rate else Decimal(0)
        goods_id, sku_ref = _catalogue_ids(channel, product)
        line_id = {
            "jd": f"{ref}-{sku_ref}",
            "pdd": ref if n_lines == 1 else f"{ref}-{i + 1}",
            "douyin": str(number + 1 + i),
            "kuaishou": str(46_700_000_000_000 + number % 10**11),
        }.get(channel, sku_ref)
        lines.append(
            p.Line(
                oid=number + 1 + i,
                product=product,
                num=num,
                discount=(discount * rate).quantize(p.CENT),
                line_id=line_id,
                goods_id=goods_id,
                sku_ref=sku_ref,
                unit_price=unit,
            )
        )
    shipping_type = rng.choices(("express", "free"), (85, 15))[0]
    post_fee = Decimal(0) if shipping_type == "free" else Decimal(rng.choice((0, 0, 6, 8, 12)))
    if region == "CN":
        address = Address(*rng.choice(p.PLACES), oaid="")
    else:
        address = Address(*rng.choice(FOREIGN_PLACES[region]), oaid="")
    carrier = rng.choice(CHANNEL_CARRIERS[channel])
    if carrier is EMS_INTL:
        tracking = _s10(rng.randrange(10**8))
    else:
        tracking = carrier.prefix + "".join(str(rng.randrange(10)) for _ in range(carrier.digits))
    return OrderIdentity(
        index=index,
        tid=number,
        tmall=False,
        lines=tuple(lines),
        post_fee=(post_fee * rate).quantize(p.CENT),
        created=created,
        buyer_nick=f"{rng.choice('abcdefghijklmnopqrstuvwxyz')}**",
        buyer_open_uid=_token(rng, 32, "0123456789abcdef"),
        receiver_name=f"{rng.choice(p.SURNAMES)}**",
        receiver_mobile=f"{rng.choice(p.MOBILE_PREFIXES)}****{rng.randrange(10000):04d}",
        addresses=(address, address),  # off Taobao the address never changes (platforms.py)
        warehouse=rng.choice(p.WAREHOUSES),
        carrier=carrier,
        tracking_no=tracking,
        trade_from="",
        shipping_type=shipping_type,
        channel=channel,
        ref=ref,
        currency=currency,
        region=region,
        pay_provider=_provider(channel, rng),
    )


# --- what the channel shows, accumulated -------------------------------------------------------


@dataclass
class ChannelState:
    """The order as the channel knows it after the steps so far (times are event times)."""

    address: Address
    step: str = ""
    at: datetime | None = None
    times: dict[str, datetime] = field(default_factory=dict)  # step -> when it happened

    def when(self, step: str) -> datetime | None:
        return self.times.get(step)


Renderer = Callable[[OrderIdentity, ChannelState], dict[str, Any]]


def _fen(value: Decimal) -> int:
    return int((value * FEN).to_integral_value())


def _secs(at: datetime | None) -> int:
    return int(at.timestamp()) if at is not None else 0


def _place_index(o: OrderIdentity) -> int:
    a = o.addresses[0]
    return [pl[:3] for pl in p.PLACES].index((a.state, a.city, a.district))


def _short_province(state: str) -> str:
    return state.removesuffix("省")


def _spec(product: p.Product) -> str:
    """``颜色:藏青;尺码:M`` -> ``藏青,M``: the spec as the platforms print it."""
    return ",".join(part.split(":")[-1] for part in product.props.split(";"))


# --- taobao ------------------------------------------------------------------------------------

TAOBAO_STATUS = {
    "created": "WAIT_BUYER_PAY",
    "paid": "WAIT_SELLER_SEND_GOODS",
    "address": "WAIT_SELLER_SEND_GOODS",
    "shipped": "WAIT_BUYER_CONFIRM_GOODS",
    "refunded": "TRADE_CLOSED",
    "closed_unpaid": "TRADE_CLOSED_BY_TAOBAO",
}


def taobao(o: OrderIdentity, s: ChannelState) -> dict[str, Any]:
    """TOP Trade, exactly as the original Taobao-only generator rendered it."""
    assert s.at is not None
    return p.taobao_trade(
        o,
        s.at,
        TAOBAO_STATUS[s.step],
        address=s.address,
        pay_time=s.when("paid"),
        consign_time=s.at if s.step == "shipped" else None,
        end_time=s.at if s.step in ("refunded", "closed_unpaid") else None,
    )


# --- jd ------------------------------------------------------------------------------------------

JD_STATE = {
    "paid": ("WAIT_SELLER_STOCK_OUT", "等待出库"),
    "shipped": ("WAIT_GOODS_RECEIVE_CONFIRM", "等待确认收货"),
    "finished": ("FINISHED_L", "完成"),
    "refunded": ("TRADE_CANCELED", "取消"),
}
JD_NO_END = "0001-01-01 00:00:00"  # JOS orderEndTime of an order not ended


def jd(o: OrderIdentity, s: ChannelState) -> dict[str, Any]:
    assert s.at is not None
    state, remark = JD_STATE[s.step]
    shipped = s.when("shipped") is not None
    ended = s.step in ("finished", "refunded")
    rng = _stable(o.order_id)
    province, city, county, town = JD_REGION[_place_index(o)]
    a = s.address
    open_id = "o*AA" + _token(rng, 40)
    discount = o.discount_fee
    return {
        "orderId": o.ref,
        "venderId": "10086123",
        "orderType": "22",
        "payType": "4-在线支付",
        "orderTotalPrice": money(o.total_fee),
        "orderSellerPrice": money(o.total_fee - discount),
        "orderPayment": money(o.payment),
        "freightPrice": money(o.post_fee),
        "sellerDiscount": money(discount),
        "orderState": state,
        "orderStateRemark": remark,
        "deliveryType": "任意时间",
        "invoiceInfo": "不需要开具发票",
        "invoiceCode": "",
        "orderRemark": "",
        "orderStartTime": china(o.created),
        "orderEndTime": china(s.at) if ended else JD_NO_END,
        "consigneeInfo": {
            "fullname": o.receiver_name.replace("**", "*"),
            "telephone": "",
            "mobile": o.receiver_mobile,
            "fullAddress": f"{_short_province(a.state)}{a.city}{a.district}***",
            "province": _short_province(a.state),
            "city": a.city,
            "county": a.district,
            "town": "",
            "provinceId": province,
            "cityId": city,
            "countyId": county,
            "townId": town,
        },
        "itemInfoList": [
            {
                "skuId": ln.sku_ref,
                "outerSkuId": ln.product.outer_sku_id,
                "skuName": f"{ln.product.title} {_spec(ln.product)}",
                "jdPrice": money(ln.price),
                "giftPoint": "0",
                "wareId": ln.goods_id,
                "itemTotal": str(ln.num),
                "productNo": ln.product.outer_sku_id.rsplit("-", 1)[0],
                "serviceName": "",
                "newStoreId": "0",
            }
            for ln in o.lines
        ],
        "couponDetailList": [
            {"orderId": o.ref, "skuId": "", "couponType": "100-店铺优惠", "couponPrice": money(discount)}
        ]
        if discount
        else [],
        "venderRemark": "",
        "balanceUsed": "0.00",
        "pin": "",
        "open_id_buyer": open_id,
        "xid_buyer": open_id,
        "returnOrder": "0",
        "paymentConfirmTime": china(s.when("paid") or o.created),
        "waybill": o.tracking_no if shipped else "",
        "logisticsId": JD_LOGISTICS_ID[o.carrier.qimen] if shipped else "",
        "modified": china(s.at),
        "directParentOrderId": "",
        "parentOrderId": "0",
        "orderSource": "移动端订单",
        "storeOrder": "",
        "idSopShipmenttype": 70,
        "storeId": "0",
    }


# --- pdd -----------------------------------------------------------------------------------------

# step -> (order_status 发货状态, refund_status 售后状态, confirm_status 成交状态, after_sales_status)
PDD_STATUS = {
    "created": (1, 1, 0, 0),
    "paid": (1, 1, 1, 0),
    "shipped": (2, 1, 1, 0),
    "received": (3, 1, 1, 0),
    "refunded": (1, 4, 1, 10),
    "closed_unpaid": (1, 1, 2, 0),
}
PDD_PAY_TYPE = {"WECHATPAY": "WEIXIN", "ALIPAY": "ALIPAY", "PDDPAY": "PDDPAY"}
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _yuan(value: Decimal) -> float:
    return float(value.quantize(p.CENT))


def pdd(o: OrderIdentity, s: ChannelState) -> dict[str, Any]:
    assert s.at is not None
    order_status, refund_status, confirm_status, after_sales = PDD_STATUS[s.step]
    paid = s.when("paid")
    shipped = s.when("shipped")
    rng = _stable(o.order_id)
    province_id, city_id, town_id = PDD_REGION[_place_index(o)]
    a = s.address
    mobile_head = o.receiver_mobile[:3]

    def cipher(mark: str = "~") -> str:
        return f"{mark}AgAAAA{_token(rng, 38, B64)}={mark}0{mark}"

    return {
        "order_sn": o.ref,
        "confirm_status": confirm_status,
        "group_status": confirm_status,
        "order_status": order_status,
        "refund_status": refund_status,
        "after_sales_status": after_sales,
        "trade_type": 0,
        "step_order_info": None,
        "is_lucky_flag": 1,
        "is_pre_sale": 0,
        "pre_sale_time": "",
        "created_time": china(o.created),
        "confirm_time": china(paid) if paid else "",
        "pay_time": china(paid) if paid else "",
        "updated_at": china(s.at),
        "last_ship_time": china((paid or o.created) + timedelta(days=2)),
        "shipping_time": china(shipped) if shipped else "",
        "receive_time": china(s.at) if s.step == "received" else "",
        "pay_amount": _yuan(o.payment),
        "goods_amount": _yuan(o.total_fee),
        "discount_amount": _yuan(o.discount_fee),
        "platform_discount": 0.0,
        "seller_discount": _yuan(o.discount_fee),
        "capital_free_discount": 0.0,
        "postage": _yuan(o.post_fee),
        "pay_type": PDD_PAY_TYPE[o.pay_provider],
        "pay_no": o.provider_trade_no if paid else "",
        "country": "中国",
        "country_id": 0,
        "province": a.state,
        "province_id": province_id,
        "city": a.city,
        "city_id": city_id,
        "town": a.district,
        "town_id": town_id,
        "address": cipher(),
        "address_mask": f"{a.state}{a.city}{a.district}****",
        "receiver_address": cipher(),
        "receiver_address_mask": "****",
        "receiver_name": cipher(),
        "receiver_name_mask": o.receiver_name,
        "receiver_phone": f"${mobile_head}$AgAAAA{_token(rng, 38, B64)}=$0$",
        "receiver_phone_mask": o.receiver_mobile,
        "tracking_number": o.tracking_no if shipped else "",
        "logistics_id": PDD_LOGISTICS_ID[o.carrier.qimen] if shipped else 0,
        "item_list": [
            {
                "goods_id": int(ln.goods_id),
                "goods_name": ln.product.title,
                "goods_spec": _spec(ln.product),
                "sku_id": int(ln.sku_ref),
                "outer_id": ln.product.outer_sku_id,
                "outer_goods_id": ln.product.outer_sku_id.rsplit("-", 1)[0],
                "goods_price": _yuan(ln.price),
                "goods_count": ln.num,
                "goods_img": f"https://img.pddpic.com/gaudit-image/2026-11-01/{ln.goods_id}.jpeg",
            }
            for ln in o.lines
        ],
        "remark": "",
        "buyer_memo": "",
        "invoice_status": 0,
        "free_sf": 0,
        "self_contained": 0,
        "risk_control_status": 0,
        "shipping_type": 0,
        "stock_out_handle_status": -1,
        "is_stock_out": 0,
        "home_delivery_type": 0,
        "return_freight_payer": 0,
        "support_nationwide_warranty": 0,
        "only_support_replace": 0,
        "card_info_list": [],
        "inner_transaction_id": "",
    }


# --- douyin --------------------------------------------------------------------------------------

# step -> (order_status, main_status, order_status_desc, main_status_desc)
DOUYIN_STATUS = {
    "created": (1, 1, "待支付", "待支付"),
    "paid": (105, 105, "已支付", "已支付"),
    "stocking": (2, 2, "备货中", "备货中"),
    "shipped": (3, 3, "已发货", "已发货"),
    "finished": (5, 5, "已完成", "已完成"),
    "refunded": (4, 21, "已关闭", "发货前退款完成"),
    "closed_unpaid": (4, 4, "已关闭", "已取消"),
}
DOUYIN_PAY_TYPE = {"WECHATPAY": 1, "ALIPAY": 2, "DOUYINPAY": 16}  # 16 收银台支付 (抖音支付)


def _douyin_region(o: OrderIdentity) -> dict[str, Any]:
    a = o.addresses[0]
    province, city, town, street, street_name = GB_REGION[_place_index(o)]
    return {
        "province": {"name": a.state, "id": province},
        "city": {"name": a.city, "id": city},
        "town": {"name": a.district, "id": town},
        "street": {"name": street_name, "id": street},
    }


def douyin(o: OrderIdentity, s: ChannelState) -> dict[str, Any]:
    assert s.at is not None
    status, main, desc, main_desc = DOUYIN_STATUS[s.step]
    paid = _secs(s.when("paid"))
    shipped = _secs(s.when("shipped"))
    finished = _secs(s.at) if s.step == "finished" else 0
    rng = _stable(o.order_id)
    region = _douyin_region(o)
    pay_type = DOUYIN_PAY_TYPE[o.pay_provider] if paid else 0
    refunded = s.step == "refunded"

    def sku(i: int, ln: p.Line) -> dict[str, Any]:
        return {
            "order_id": ln.line_id,
            "parent_order_id": o.ref,
            "order_level": 3,
            "order_status": status,
            "main_status": main,
            "pay_time": paid,
            "create_time": _secs(o.created),
            "update_time": _secs(s.at),
            "finish_time": finished,
            "b_type": 2,
            "b_type_desc": "抖音",
            "pay_type": pay_type,
            "channel_payment_no": o.provider_trade_no if paid else "",
            "order_amount": _fen(ln.total),
            "pay_amount": _fen(ln.payment),
            "promotion_amount": _fen(ln.discount),
            "promotion_shop_amount": _fen(ln.discount),
            "code": ln.product.outer_sku_id,
            "sku_id": int(ln.sku_ref),
            "product_id": int(ln.goods_id),
            "product_name": ln.product.title,
            "spec": [{"name": "规格", "value": _spec(ln.product)}],
            "out_sku_id": "0",
            "origin_amount": _fen(ln.price),
            "item_num": ln.num,
            "sum_amount": _fen(ln.total),
            "after_sale_info": {
                "after_sale_status": 12 if refunded else 0,
                "after_sale_type": 2 if refunded else 0,
                "refund_status": 3 if refunded else 0,
            },
            "ship_time": shipped,
        }

    return {
        "shop_id": 7784061,
        "shop_name": "ordertwin抖音官方旗舰店",
        "open_id": "",
        "order_id": o.ref,
        "order_level": 2,
        "biz": 2,
        "biz_desc": "小店",
        "order_type": 0,
        "order_type_desc": "普通订单",
        "trade_type": 0,
        "trade_type_desc": "普通",
        "order_status": status,
        "order_status_desc": desc,
        "main_status": main,
        "main_status_desc": main_desc,
        "pay_time": paid,
        "order_expire_time": 1800,
        "finish_time": finished,
        "create_time": _secs(o.created),
        "update_time": _secs(s.at),
        "cancel_reason": "买家取消" if s.step in ("refunded", "closed_unpaid") else "",
        "buyer_words": "",
        "seller_words": "",
        "b_type": 2,
        "b_type_desc": "抖音",
        "sub_b_type": 1,
        "sub_b_type_desc": "app内-原生",
        "app_id": 1128,
        "pay_type": pay_type,
        "channel_payment_no": o.provider_trade_no if paid else "",
        "order_amount": _fen(o.total_fee + o.post_fee),
        "pay_amount": _fen(o.payment),
        "post_amount": _fen(o.post_fee),
        "promotion_amount": _fen(o.discount_fee),
        "promotion_shop_amount": _fen(o.discount_fee),
        "promotion_platform_amount": 0,
        "doudian_open_id": "1@#" + _token(rng, 60, B64),
        "open_address_id": "#" + _token(rng, 86, B64),
        "encrypt_post_tel": f"$${_token(rng, 56, B64)}$1$$",
        "encrypt_post_receiver": f"##{_token(rng, 56, B64)}#1##",
        "mask_post_receiver": o.receiver_name,
        "mask_post_tel": f"1*******{o.receiver_mobile[-3:]}",
        "post_addr": {**region, "encrypt_detail": f"##{_token(rng, 56, B64)}#1##"},
        "mask_post_addr": {**region, "detail": f"{region['street']['name']}***号"},
        "exp_ship_time": (paid or _secs(o.created)) + 2 * 86400,
        "ship_time": shipped,
        "logistics_info": [
            {
                "tracking_no": o.tracking_no,
                "company": o.carrier.kuaidi100,
                "company_name": o.carrier.name,
                "ship_time": shipped,
                "delivery_id": str(7_438_525_010_135_810_000 + o.tid % 10**6),
            }
        ]
        if shipped
        else [],
        "sku_order_list": [sku(i, ln) for i, ln in enumerate(o.lines)],
        "seller_remark_stars": 0,
    }


# --- kuaishou ------------------------------------------------------------------------------------

KUAISHOU_STATUS = {"created": 10, "paid": 30, "shipped": 40, "received": 50, "finished": 70}
KUAISHOU_PAY = {"ALIPAY": (2, "支付宝"), "WECHATPAY": (1, "微信")}


def _ms(at: datetime | None) -> int:
    return _secs(at) * 1000


def kuaishou(o: OrderIdentity, s: ChannelState) -> dict[str, Any]:
    assert s.at is not None
    status = 80 if s.step in ("refunded", "closed_unpaid") else KUAISHOU_STATUS[s.step]
    paid = _ms(s.when("paid"))
    shipped = s.when("shipped")
    (ln,) = o.lines
    rng = _stable(o.order_id)
    province, city, district, town, town_name = GB_REGION[_place_index(o)]
    a = s.address
    pay_type, pay_channel = KUAISHOU_PAY[o.pay_provider] if paid else (0, "")
    refunds = [{"refundId": 10_000_000 + o.tid % 90_000_000, "refundStatus": 60}] if s.step == "refunded" else []
    return {
        "orderBaseInfo": {
            "oid": o.tid,
            "payTime": paid,
            "buyerImage": f"https://p2.a.yximgs.com/uhead/AB/2026/01/01/00/{_token(rng, 24)}.jpg",
            "buyerOpenId": o.buyer_open_uid,
            "buyerNick": o.buyer_nick.upper(),
            "sellerOpenId": "a56c3e8b2d0f4e1c9b7a6d5e4f3c2b1a",
            "sellerNick": "ordertwin快手小店",
            "expressFee": _fen(o.post_fee),
            "discountFee": _fen(o.discount_fee),
            "totalFee": _fen(o.payment),
            "status": status,
            "sendTime": _ms(shipped),
            "refundTime": _ms(s.at) if refunds else 0,
            "createTime": _ms(o.created),
            "updateTime": _ms(s.at),
            "remark": "",
            "theDayOfDeliverGoodsTime": 2,
            "promiseTimeStampOfDelivery": (paid or _ms(o.created)) + 48 * 3_600_000,
            "validPromiseShipmentTimeStamp": (paid or _ms(o.created)) + 48 * 3_600_000,
            "activityType": 0,
            "cpsType": 0,
            "preSale": 0,
            "recvTime": _ms(s.when("received")),
            "coType": 0,
            "commentStatus": 0,
            "payType": pay_type,
            "payChannel": pay_channel,
            "riskCode": 0,
            "multiplePiecesNo": 0,
            "priorityDelivery": False,
            "orderSellerRoleInfo": {"roleId": 2131430925, "roleName": "商家", "roleType": 1},
        },
        "orderItemInfo": {
            "skuId": int(ln.sku_ref),
            "relSkuId": 0,
            "skuDesc": _spec(ln.product),
            "skuNick": ln.product.outer_sku_id,
            "itemId": int(ln.goods_id),
            "relItemId": 0,
            "itemTitle": ln.product.title,
            "itemLinkUrl": f"https://app.kwaixiaodian.com/merchant/shop/detail?id={ln.goods_id}",
            "itemPicUrl": f"https://u1-000.ecukwai.com/ufile/adsocial/{ln.goods_id}.jpg",
            "num": ln.num,
            "originalPrice": _fen(ln.price),
            "discountFee": _fen(ln.discount),
            "price": _fen(ln.price),
            "itemType": 1,
            "goodsCode": ln.product.outer_sku_id.rsplit("-", 1)[0],
            "warehouseCode": "",
            "orderItemId": int(ln.line_id),
            "goodStoreCode": 0,
        },
        "orderAddress": {
            "consignee": "",
            "mobile": "",
            "provinceCode": int(province) * 10000,
            "province": a.state,
            "cityCode": int(city),
            "city": a.city,
            "districtCode": int(district),
            "district": a.district,
            "townCode": int(town),
            "town": town_name,
            "address": "",
            "encryptedConsignee": f"#{_token(rng, 4)}#{_token(rng, 32)}",
            "encryptedMobile": f"${o.receiver_mobile[:3]}0000${_token(rng, 32)}",
            "encryptedAddress": f"~{town_name}~{_token(rng, 32)}",
            "desensitiseConsignee": o.receiver_name,
            "desensitiseMobile": o.receiver_mobile,
            "desensitiseAddress": f"{town_name}***号",
        },
        "orderRefundList": refunds,
        "orderLogisticsInfo": [
            {
                "expressNo": o.tracking_no,
                "expressCode": KUAISHOU_EXPRESS_CODE[o.carrier.qimen],
                "logisticsId": 0,
            }
        ]
        if shipped
        else [],
        "orderNote": {"orderNoteInfo": []},
        "orderCpsInfo": {
            "distributorId": 0,
            "distributorName": "",
            "kwaiMoneyUserId": 0,
            "kwaiMoneyUserNickName": "",
            "activityUserId": 0,
            "activityUserNickName": "",
        },
    }


# --- shopee --------------------------------------------------------------------------------------

SHOPEE_STATUS = {
    "created": "UNPAID",
    "paid": "READY_TO_SHIP",
    "shipped": "PROCESSED",
    "picked_up": "SHIPPED",
    "received": "TO_CONFIRM_RECEIVE",
    "finished": "COMPLETED",
    "cancel_request": "IN_CANCEL",
    "refunded": "CANCELLED",
    "closed_unpaid": "CANCELLED",
}
SHOPEE_LOGISTICS = {
    "shipped": "LOGISTICS_REQUEST_CREATED",
    "picked_up": "LOGISTICS_PICKUP_DONE",
    "received": "LOGISTICS_DELIVERY_DONE",
    "finished": "LOGISTICS_DELIVERY_DONE",
}


def _float(value: Decimal) -> float:
    return float(value.quantize(p.CENT))


def shopee(o: OrderIdentity, s: ChannelState) -> dict[str, Any]:
    assert s.at is not None
    created = _secs(o.created)
    cancelled = s.step in ("refunded", "closed_unpaid", "cancel_request")
    rng = _stable(o.order_id)
    items = [
        {
            "item_id": int(ln.goods_id),
            "item_name": ln.product.title,
            "item_sku": ln.product.outer_sku_id.rsplit("-", 1)[0],
            "model_id": int(ln.sku_ref),
            "model_name": _spec(ln.product),
            "model_sku": ln.product.outer_sku_id,
            "model_quantity_purchased": ln.num,
            "model_original_price": _float(ln.price),
            "model_discounted_price": _float(ln.payment / ln.num),
            "wholesale": False,
            "weight": float(ln.product.weight_kg),
            "add_on_deal": False,
            "main_item": False,
            "add_on_deal_id": 0,
            "promotion_type": "",
            "promotion_id": 0,
            "order_item_id": int(ln.goods_id),
            "promotion_group_id": 0,
            "is_prescription_item": False,
            "is_b2c_owned_item": False,
        }
        for ln in o.lines
    ]
    return {
        "order_sn": o.ref,
        "region": o.region,
        "currency": o.currency,
        "cod": False,
        "total_amount": _float(o.payment),
        "pending_terms": [],
        "order_status": SHOPEE_STATUS[s.step],
        "shipping_carrier": "Standard Delivery",
        "payment_method": "ShopeePay",
        "estimated_shipping_fee": _float(o.post_fee),
        "message_to_seller": "",
        "create_time": created,
        "update_time": _secs(s.at),
        "days_to_ship": 3,
        "ship_by_date": created + 3 * 86400,
        "buyer_user_id": 100_000_000 + o.tid % 900_000_000,
        "buyer_username": f"{o.buyer_nick[0]}****{_token(rng, 1, 'abcdefghijklmnopqrstuvwxyz')}",
        "recipient_address": {
            "name": f"{_token(rng, 1, 'ABCDEFGHJKLMNPRSTW')}****{_token(rng, 1, 'aehnos')}",
            "phone": f"******{o.receiver_mobile[-2:]}",
            "town": "",
            "district": "",
            "city": "",
            "state": "",
            "region": o.region,
            "zipcode": "******",
            "full_address": "****",
        },
        "actual_shipping_fee": 0,
        "goods_to_declare": False,
        "note": "",
        "note_update_time": 0,
        "item_list": items,
        "pay_time": _secs(s.when("paid")),
        "dropshipper": "",
        "dropshipper_phone": "",
        "split_up": False,
        "buyer_cancel_reason": "Change of mind" if cancelled else "",
        "cancel_by": "buyer" if cancelled else "",
        "cancel_reason": "Change of mind" if cancelled else "",
        "actual_shipping_fee_confirmed": False,
        "buyer_cpf_id": "",
        "fulfillment_flag": "fulfilled_by_cb_seller",
        "pickup_done_time": _secs(s.when("picked_up")),
        "package_list": [
            {
                "package_number": f"OFG{o.tid % 10**15:015d}",
                "logistics_status": SHOPEE_LOGISTICS.get(s.step, "LOGISTICS_NOT_START"),
                "shipping_carrier": "Standard Delivery",
                "item_list": [
                    {"item_id": int(ln.goods_id), "model_id": int(ln.sku_ref), "model_quantity": ln.num}
                    for ln in o.lines
                ],
            }
        ],
        "invoice_data": None,
        "checkout_shipping_carrier": None,
        "reverse_shipping_fee": 0,
        "order_chargeable_weight_gram": int(sum(Decimal(ln.product.weight_kg) * ln.num for ln in o.lines) * 1000),
        "booking_sn": "",
        "advance_package": False,
        "return_request_due_date": 0,
    }


# --- shopify -------------------------------------------------------------------------------------

# step -> (financial_status, fulfillment_status, cancelled)
SHOPIFY_STATUS: dict[str, tuple[str, str | None, bool]] = {
    "created": ("pending", None, False),
    "paid": ("paid", None, False),
    "shipped": ("paid", "fulfilled", False),
    "received": ("paid", "fulfilled", False),
    "refunded": ("refunded", None, True),
    "closed_unpaid": ("voided", None, True),
}


def shop_time(at: datetime | None) -> str | None:
    return at.astimezone(SHOP_TZ).isoformat(timespec="seconds") if at is not None else None


def shopify(o: OrderIdentity, s: ChannelState) -> dict[str, Any]:
    assert s.at is not None
    financial, fulfillment, cancelled = SHOPIFY_STATUS[s.step]
    shipped = s.when("shipped")
    number = 1001 + o.index
    a = s.address
    line_items = [
        {
            "id": o.tid * 100 + i,
            "admin_graphql_api_id": f"gid://shopify/LineItem/{o.tid * 100 + i}",
            "product_id": int(ln.goods_id),
            "variant_id": int(ln.sku_ref),
            "title": ln.product.title,
            "variant_title": _spec(ln.product),
            "name": f"{ln.product.title} - {_spec(ln.product)}",
            "sku": ln.product.outer_sku_id,
            "quantity": ln.num,
            "current_quantity": ln.num,
            "price": money(ln.price),
            "total_discount": money(ln.discount),
            "fulfillment_service": "manual",
            "fulfillment_status": "fulfilled" if fulfillment else None,
            "fulfillable_quantity": 0 if fulfillment or cancelled else ln.num,
            "requires_shipping": True,
            "taxable": False,
            "gift_card": False,
            "grams": int(Decimal(ln.product.weight_kg) * 1000),
            "vendor": "ordertwin",
        }
        for i, ln in enumerate(o.lines)
    ]
    fulfillments = []
    if fulfillment:
        fulfillments.append(
            {
                "id": o.tid * 100 + 50,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{o.tid * 100 + 50}",
                "order_id": o.tid,
                "name": f"#{number}.1",
                "status": "success",
                "service": "manual",
                "shipment_status": "delivered" if s.step == "received" else None,
                "created_at": shop_time(shipped),
                "updated_at": shop_time(s.at),
                "tracking_company": SHOPIFY_TRACKING_COMPANY,
                "tracking_number": o.tracking_no,
                "tracking_numbers": [o.tracking_no],
                "tracking_url": None,
                "tracking_urls": [],
                "line_items": [{"id": it["id"], "sku": it["sku"], "quantity": it["quantity"]} for it in line_items],
            }
        )
    refunds = []
    if s.step == "refunded":
        refunds.append(
            {
                "id": o.tid * 100 + 60,
                "order_id": o.tid,
                "created_at": shop_time(s.at),
                "processed_at": shop_time(s.at),
                "restock": True,
                "transactions": [
                    {"kind": "refund", "status": "success", "amount": money(o.payment), "gateway": "shopify_payments"}
                ],
            }
        )
    subtotal = o.total_fee - o.discount_fee
    return {
        "id": o.tid,
        "admin_graphql_api_id": f"gid://shopify/Order/{o.tid}",
        "name": f"#{number}",
        "order_number": number,
        "email": f"buyer{o.index}@example.com",
        "created_at": shop_time(o.created),
        "processed_at": shop_time(o.created),
        "updated_at": shop_time(s.at),
        "cancelled_at": shop_time(s.at) if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "closed_at": shop_time(s.at) if cancelled else None,
        "confirmed": True,
        "currency": o.currency,
        "presentment_currency": o.currency,
        "financial_status": financial,
        "fulfillment_status": fulfillment,
        "payment_gateway_names": ["shopify_payments"],
        "subtotal_price": money(subtotal),
        "total_line_items_price": money(o.total_fee),
        "total_discounts": money(o.discount_fee),
        "total_shipping_price_set": {
            "shop_money": {"amount": money(o.post_fee), "currency_code": o.currency},
            "presentment_money": {"amount": money(o.post_fee), "currency_code": o.currency},
        },
        "total_tax": "0.00",
        "total_price": money(o.payment),
        "taxes_included": False,
        "test": False,
        "source_name": "web",
        "tags": "",
        "line_items": line_items,
        "fulfillments": fulfillments,
        "refunds": refunds,
        "shipping_address": {
            "first_name": "Sam",
            "last_name": f"Buyer{o.index}",
            "address1": f"{100 + o.index % 900} Example Street",
            "address2": None,
            "city": a.city,
            "zip": a.zip_code,
            "province_code": a.state,
            "country_code": o.region,
            "phone": "+1 555-0100",
        },
    }


RENDERERS: Mapping[str, Renderer] = {
    "taobao": taobao,
    "jd": jd,
    "pdd": pdd,
    "douyin": douyin,
    "kuaishou": kuaishou,
    "shopee": shopee,
    "shopify": shopify,
}

# The steps each channel has (the generator emits a step only where the channel has it).
CHANNEL_STEPS: Mapping[str, frozenset[str]] = {
    "taobao": frozenset(TAOBAO_STATUS),
    "jd": frozenset(JD_STATE),
    "pdd": frozenset(PDD_STATUS),
    "douyin": frozenset(DOUYIN_STATUS),
    "kuaishou": frozenset({*KUAISHOU_STATUS, "refunded", "closed_unpaid"}),
    "shopee": frozenset(SHOPEE_STATUS),
    "shopify": frozenset(SHOPIFY_STATUS),
}
assert all(steps <= set(STEPS) for steps in CHANNEL_STEPS.values())


def render(o: OrderIdentity, state: ChannelState, step: str, at: datetime) -> dict[str, Any]:
    """Record ``step`` at ``at`` in ``state`` and return the order as the channel now shows it."""
    if step not in CHANNEL_STEPS[o.channel]:
        raise ValueError(f"{o.channel} has no step {step!r}")
    if step == "address":
        state.address = o.addresses[1]
    state.step, state.at = step, at
    state.times.setdefault(step, at)
    return RENDERERS[o.channel](o, state)


def record_key(o: OrderIdentity) -> bytes:
    """The Kafka key the channel's connector uses: the platform order id as text."""
    return o.platform_order_no.encode("utf-8")
