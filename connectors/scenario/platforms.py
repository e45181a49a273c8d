"""What the scenario knows about each sales channel: how common it is, how the merchant's
subsystems name it, and which profiles and faults its orders can carry.

Pure constants (no payload rendering: that is :mod:`connectors.scenario.channels`), so both
the shared subsystem payloads (:mod:`connectors.scenario.payloads`) and the generator read
them without import cycles.

Limits, each read off the normalisers (``streams/normalise/sources``), not assumed:

- **Shopee and Shopify orders cannot be named by the OMS or the WMS.** 旺店通's 平台代码表
  as mapped by ``oms.OMS_PLATFORM`` has no id for them, and Qimen has no
  ``sourcePlatformCode`` (they travel as ``OTHERS``, which ``wms.QIMEN_PLATFORM`` rejects,
  see tests/fixtures/wms/bad_platform_others.json). So the scenario emits no OMS/WMS record
  for them (it would only be rejected), and every such order that is paid and not closed
  within the threshold raises ``paid_not_in_oms`` and ``paid_not_in_wms``: the ground truth
  lists those as :data:`connectors.scenario.model.STRUCTURAL_RULES`. No rule that needs a
  WMS fact (cancel, carrier pick-up, tracking on the channel) can apply to them either.
- **Only Taobao/Tmall can change the address.** Every channel normaliser yields an address
  fingerprint, but only TOP's ``oaid`` is also carried by the WMS (Qimen
  ``receiverInfo.oaid``) so that both fingerprints are of the same text. The other channels
  fingerprint region ids + a masked detail (JD, PDD, Douyin, Kuaishou) or their own masked
  or clear fields (Shopee, Shopify) that a Qimen ``receiverInfo`` never reproduces; an
  address change there would make ``address_not_in_wms`` fire even when the warehouse did
  get the new address. The ``address_change`` profile and the
  ``address_change_not_propagated`` fault are therefore Taobao-only.
- **JD shows no unpaid orders**: JOS ``orderState`` starts at 等待出库 (paid), so a JD order's
  first record is its payment and a JD order never takes the ``unpaid`` profile.
"""

from __future__ import annotations

from collections.abc import Mapping

from ordertwin.topics import CHANNELS

# Order share of each channel for a Chinese mid-size merchant (Taobao/Tmall first, then the
# content-commerce and value platforms, two small cross-border stores). Illustrative weights.
CHANNEL_WEIGHTS: Mapping[str, int] = {
    "taobao": 40,
    "douyin": 20,
    "pdd": 15,
    "jd": 12,
    "kuaishou": 7,
    "shopee": 3,
    "shopify": 3,
}
assert set(CHANNEL_WEIGHTS) == set(CHANNELS)

# 旺店通旗舰版 平台代码表 (the ids ``streams.normalise.sources.oms.OMS_PLATFORM`` maps back).
OMS_PLATFORM_ID: Mapping[str, int] = {"taobao": 1, "jd": 3, "pdd": 39, "douyin": 69, "kuaishou": 75}

# Qimen 订单来源平台编码 (``streams.normalise.sources.wms.QIMEN_PLATFORM``); Taobao is TB or TM.
QIMEN_PLATFORM_CODE: Mapping[str, str] = {"jd": "JD", "pdd": "PDD", "douyin": "DY", "kuaishou": "KS"}

# Channels whose orders the OMS and WMS can attribute (see the module docstring).
ATTRIBUTABLE: frozenset[str] = frozenset(OMS_PLATFORM_ID)
assert {*QIMEN_PLATFORM_CODE, "taobao"} == set(ATTRIBUTABLE)

ADDRESS_CHANGE_CHANNELS: frozenset[str] = frozenset({"taobao"})
SHOWS_UNPAID: frozenset[str] = frozenset(CHANNELS) - {"jd"}


# The merchant's shop on each channel: (旺店通 shop_no, shop_name, shop_id).
SHOPS: Mapping[str, tuple[str, str, int]] = {
    "taobao": ("SHOP01", "ordertwin旗舰店", 7),
    "jd": ("SHOP02", "ordertwin京东自营旗舰店", 8),
    "pdd": ("SHOP03", "ordertwin拼多多官方店", 9),
    "douyin": ("SHOP04", "ordertwin抖音官方旗舰店", 10),
    "kuaishou": ("SHOP05", "ordertwin快手小店", 11),
    "shopee": ("SHOP06", "ordertwin Official Store", 12),
    "shopify": ("SHOP07", "ordertwin.myshopify.com", 13),
}

# Ledger account the finance team books each channel's receivables to.
ACCOUNTS: Mapping[str, str] = {
    "jd": "1122-应收账款-京东",
    "pdd": "1122-应收账款-拼多多",
    "douyin": "1122-应收账款-抖音",
    "kuaishou": "1122-应收账款-快手",
    "shopee": "1122-应收账款-Shopee",
    "shopify": "1122-应收账款-Shopify",
}

# Which faults an order on a channel can carry: the fault's rule must be able to apply and be
# met there (module docstring). Every channel can have its payment booked wrong.
_NEEDS_WMS = ("wms_never_receives", "carrier_never_picks_up", "cancel_not_propagated_to_wms")
FAULT_CHANNELS: Mapping[str, frozenset[str]] = {
    **{kind: ATTRIBUTABLE for kind in _NEEDS_WMS},
    "tracking_not_uploaded_to_channel": ATTRIBUTABLE,
    "address_change_not_propagated": ADDRESS_CHANGE_CHANNELS,
    "finance_amount_mismatch": frozenset(CHANNELS),
}


def can_carry(channel: str, kind: str) -> bool:
    """Whether an order on ``channel`` can carry the profile or fault ``kind``."""
    if kind == "address_change":
        return channel in ADDRESS_CHANGE_CHANNELS
    if kind == "unpaid":
        return channel in SHOWS_UNPAID
    allowed = FAULT_CHANNELS.get(kind)
    return allowed is None or channel in allowed
