"""The one settings object, read from ``ORDERTWIN_*`` environment variables.

Built once at the entry point (``ordertwin.cli``) and passed down; no module reads
the environment on its own, and nothing connects at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration with localhost defaults that match ``make run``."""

    model_config = SettingsConfigDict(env_prefix="ORDERTWIN_", extra="ignore")

    # --- Kafka ---------------------------------------------------------------
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated.")
    topic_prefix: str = Field("", description="Prefix for every topic name (isolates test runs and tenants).")
    partitions: int = Field(4, ge=1, description="Partitions of every topic we create.")
    replication_factor: int = Field(1, ge=1, description="Replication of every topic.")
    kafka_security: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Extra librdkafka client settings for a secured cluster, as JSON, e.g. "
            '{"security.protocol":"SASL_SSL","sasl.mechanism":"PLAIN",...}.'
        ),
    )

    # --- Worker --------------------------------------------------------------
    app_id: str = Field("ordertwin", description="Faust app id = consumer group id.")
    store: str = Field("rocksdb://", description="Faust table store: rocksdb:// (production) or memory://.")
    data_dir: Path = Field(REPO_ROOT / "var" / "worker", description="Worker state (RocksDB) directory.")
    processing_guarantee: str = Field(
        "at_least_once",
        pattern="^(at_least_once|exactly_once)$",
        description="Faust processing guarantee; exactly_once uses Kafka transactions.",
    )
    producer_linger_ms: int = Field(
        5, ge=0, description="Worker producer linger: a few ms batches changelog and output records."
    )
    twin_cache_size: int = Field(
        20_000,
        ge=0,
        description="Decoded twins kept in memory, ~5 KiB each (the table stays the source of truth).",
    )
    store_block_cache_mib: int = Field(
        32,
        ge=1,
        description="RocksDB block cache per table partition (Faust's default is 2 GiB each, unbounded in practice).",
    )
    store_write_buffer_mib: int = Field(
        16, ge=1, description="RocksDB memtable size per table partition (two at most per partition)."
    )
    session_timeout_s: float = Field(
        10.0, gt=0, description="Consumer group session timeout: how fast a dead worker's partitions move."
    )
    web_host: str = Field("127.0.0.1", description="Worker HTTP API bind address.")
    web_port: int = Field(6066, description="Worker HTTP API port (/orders, /metrics).")
    max_raw_bytes: int = Field(1_000_000, description="Raw records larger than this are dead-lettered as OVERSIZE.")
    schemas_dir: Path = Field(REPO_ROOT / "schemas", description="Where the .avsc files live.")
    fingerprint_key: SecretStr = Field(
        SecretStr("ordertwin-dev-fingerprint-key"),
        description="HMAC key for address/line fingerprints (never compare raw PII).",
    )
    log_level: str = Field("info", description="Worker log level.")
    log_format: str = Field(
        "text",
        pattern="^(text|json)$",
        description="Log format of worker, connectors and notifier: text, or json (one JSON object per line).",
    )

    # --- Divergence ----------------------------------------------------------
    divergence_threshold_s: float = Field(
        600.0, gt=0, description="Default time a subsystem may lag the twin before an alert."
    )
    rule_thresholds_s: dict[str, float] = Field(
        default_factory=dict, description='Per-rule thresholds as JSON, e.g. {"paid_not_in_wms": 300}.'
    )
    source_stale_s: float = Field(
        600.0, gt=0, description="A source whose watermark is older than this raises SOURCE_STALE."
    )
    stale_check_interval_s: float = Field(1.0, gt=0, description="How often SOURCE_STALE is evaluated.")

    # --- Inventory (streams/inventory) ---------------------------------------
    inventory_oversell_threshold_s: float = Field(
        0.0, ge=0, description="OVERSELL is raised once the WMS watermark is this far past the moment available < 0."
    )
    inventory_divergence_threshold_s: float = Field(
        600.0, gt=0, description="A WMS snapshot the movements do not explain raises STOCK_DIVERGENCE after this."
    )
    inventory_low_stock: dict[str, int] = Field(
        default_factory=dict,
        description='Low-stock limit per SKU (available <= limit warns), JSON; "*" = every SKU, e.g. {"*": 5}.',
    )
    inventory_guard_share: float = Field(
        0.5, ge=0, description="Lock a channel's SKU when its paid units in the window exceed this share of available."
    )
    inventory_guard_window_h: int = Field(24, ge=1, description="Look-back window of the channel stock guard.")
    inventory_retention_h: float = Field(
        24.0, gt=0, description="Settled order lines are remembered this long (event time) against replays."
    )

    # --- Notifier (ordertwin notify) ------------------------------------------
    notify_targets: list[dict[str, Any]] = Field(
        default_factory=list,
        description=(
            'Where alerts are posted, as JSON: [{"kind": "wecom"|"dingtalk"|"webhook", "url": "...", '
            '"name": "ops", "secret": "DingTalk SEC... or webhook HMAC key (optional)", '
            '"min_severity": "INFO|WARNING|CRITICAL", "rate_per_min": 20}].'
        ),
    )
    notify_group_id: str = Field(
        "ordertwin-notify", description="Consumer group of the notifier; its committed offsets = what was delivered."
    )
    notify_instance_id: str = Field(
        "",
        description="Kafka static group membership id (group.instance.id): a restarted notifier takes its "
        "partitions back at once. Unique per notifier process; empty = dynamic membership.",
    )
    notify_offset_reset: str = Field(
        "earliest",
        pattern="^(earliest|latest)$",
        description="Where a new notifier group starts: earliest (never skip an alert) or latest.",
    )
    notify_batch_s: float = Field(5.0, gt=0, description="Alerts arriving within this window are sent together.")
    notify_individual_max: int = Field(
        5, ge=1, description="A batch with more alerts than this becomes one digest message per robot."
    )
    notify_rate_per_min: int = Field(
        20, ge=1, description="Messages per minute per WeCom/DingTalk robot (both allow 20)."
    )
    notify_retry_base_s: float = Field(1.0, gt=0, description="First retry delay of a failed delivery (doubles).")
    notify_retry_max_s: float = Field(300.0, gt=0, description="Longest retry delay of a failed delivery.")
    notify_http_timeout_s: float = Field(10.0, gt=0, description="Timeout of one webhook POST.")
    notify_timezone: str = Field("Asia/Shanghai", description="Time zone of the times shown in chat messages.")
    notify_metrics_host: str = Field("127.0.0.1", description="Bind address of the notifier's Prometheus /metrics.")
    notify_metrics_port: int = Field(9109, description="Prometheus /metrics port of the notifier (0 = off).")

    # --- Connectors ----------------------------------------------------------
    connector_instance: str = Field("local-1", description="Identifies this connector process in record headers.")
    connector_metrics_port: int = Field(9108, description="Prometheus /metrics port of a connector process (0 = off).")
    poll_interval_s: float = Field(5.0, gt=0, description="Pause between incremental pulls.")
    backoff_s: tuple[float, ...] = Field(
        (30.0, 90.0, 270.0), description="Retry delays for failed platform calls (jittered)."
    )
    pull_overlap_s: float = Field(60.0, ge=0, description="Each pull window restarts this much before the cursor.")
    pull_start: str = Field("", description="First cursor (ISO time) when no cursor is stored; empty = 24 h ago.")
    pull_safety_lag_s: float = Field(
        30.0, ge=0, description="Pull windows end this far behind now (platform index lag)."
    )
    pull_window_s: float = Field(1800.0, gt=0, description="Span of one pull request; clamped to the platform maximum.")
    connector_http_timeout_s: float = Field(30.0, gt=0, description="Timeout of one platform HTTP call.")
    connector_flush_timeout_s: float = Field(
        60.0, gt=0, description="How long a connector waits for Kafka to acknowledge a window."
    )
    connector_metrics_host: str = Field("127.0.0.1", description="Bind address of the connector's Prometheus /metrics.")

    # --- Platforms (credentials and endpoints) -------------------------------
    taobao_base_url: str = Field("http://127.0.0.1:8701/router/rest", description="Taobao TOP gateway URL.")
    taobao_app_key: str = Field("12345678", description="Taobao TOP app key.")
    taobao_app_secret: SecretStr = Field(SecretStr("taobao-dev-secret"), description="Taobao TOP app secret.")
    taobao_session: SecretStr = Field(SecretStr("taobao-dev-session"), description="Taobao seller session key.")
    taobao_sign_method: str = Field("md5", description="TOP sign method: md5, hmac or hmac-sha256.")
    taobao_page_size: int = Field(50, ge=1, le=100, description="TOP page_size (max 100; TOP recommends 40-50).")
    simulator_host: str = Field("127.0.0.1", description="Platform simulators bind here.")
    taobao_simulator_port: int = Field(8701, description="Taobao simulator port.")

    # --- Webhooks (push sources; connectors/webhook.py) ----------------------
    webhook_host: str = Field("127.0.0.1", description="Webhook receivers bind here.")
    webhook_max_body_bytes: int = Field(1_048_576, gt=0, description="Larger webhook bodies are refused (413).")
    webhook_ack_timeout_s: float = Field(
        4.0, gt=0, description="Answer 503 if Kafka has not acknowledged a push by then (Shopify waits 5 s)."
    )
    webhook_max_age_s: float = Field(
        172_800.0, gt=0, description="Pushes signed longer ago are refused as stale; also the dedup window."
    )
    webhook_dedup_size: int = Field(200_000, ge=1, description="Acknowledged push ids remembered for dedup.")
    shopify_base_url: str = Field("http://127.0.0.1:8722", description="https://<shop>.myshopify.com")
    shopify_api_version: str = Field("2025-01", description="Shopify Admin REST API version.")
    shopify_access_token: SecretStr = Field(SecretStr("shpat_dev_token"), description="Admin API access token.")
    shopify_webhook_secret: SecretStr = Field(
        SecretStr("shopify-dev-secret"), description="App client secret (webhook HMAC key)."
    )
    shopify_page_size: int = Field(250, ge=1, le=250, description="orders.json limit (max 250).")
    shopify_webhook_port: int = Field(8732, description="Shopify webhook receiver port.")
    shopify_simulator_port: int = Field(8722, description="Shopify simulator port.")
    shopee_base_url: str = Field("http://127.0.0.1:8723", description="e.g. https://partner.shopeemobile.com")
    shopee_partner_id: int = Field(1_000_001, description="Shopee Open Platform partner_id.")
    shopee_partner_key: SecretStr = Field(SecretStr("shopee-dev-partner-key"), description="Shopee partner key.")
    shopee_shop_id: int = Field(220_123_456, description="Shopee shop_id.")
    shopee_access_token: SecretStr = Field(SecretStr("shopee-dev-access-token"), description="Shop access_token.")
    shopee_page_size: int = Field(100, ge=1, le=100, description="get_order_list page_size (max 100).")
    shopee_webhook_port: int = Field(8733, description="Shopee push receiver port.")
    shopee_webhook_url: str = Field(
        "", description="The push callback URL exactly as registered with Shopee (it is signed); empty = as received."
    )
    shopee_simulator_port: int = Field(8723, description="Shopee simulator port.")
    douyin_base_url: str = Field("http://127.0.0.1:8724", description="e.g. https://openapi-fxg.jinritemai.com")
    douyin_app_key: str = Field("7000000000000000001", description="抖店 app_key.")
    douyin_app_secret: SecretStr = Field(SecretStr("douyin-dev-secret"), description="抖店 app_secret.")
    douyin_access_token: SecretStr = Field(SecretStr("douyin-dev-access-token"), description="Shop access_token.")
    douyin_sign_method: str = Field("hmac-sha256", description="抖店 API sign_method: hmac-sha256 or md5.")
    douyin_page_size: int = Field(100, ge=1, le=100, description="order.searchList size (max 100).")
    douyin_webhook_port: int = Field(8734, description="抖店 message push receiver port.")
    douyin_simulator_port: int = Field(8724, description="抖店 simulator port.")
    jd_base_url: str = Field("http://127.0.0.1:8702/routerjson", description="JD JOS (宙斯) gateway URL.")
    jd_app_key: str = Field("jd-dev-app-key", description="JD JOS app key.")
    jd_app_secret: SecretStr = Field(SecretStr("jd-dev-secret"), description="JD JOS app secret.")
    jd_access_token: SecretStr = Field(SecretStr("jd-dev-token"), description="JD JOS seller access_token.")
    jd_method: str = Field(
        "jingdong.pop.order.enSearch",
        description="JOS order search: jingdong.pop.order.enSearch (encrypted PII) or jingdong.pop.order.search.",
    )
    jd_page_size: int = Field(100, ge=1, le=100, description="JOS page_size (max 100).")
    jd_simulator_port: int = Field(8702, description="JD simulator port.")
    pdd_base_url: str = Field("http://127.0.0.1:8703/api/router", description="Pinduoduo open platform gateway URL.")
    pdd_client_id: str = Field("pdd-dev-client-id", description="Pinduoduo client_id.")
    pdd_client_secret: SecretStr = Field(SecretStr("pdd-dev-secret"), description="Pinduoduo client_secret.")
    pdd_access_token: SecretStr = Field(SecretStr("pdd-dev-token"), description="Pinduoduo mall access_token.")
    pdd_page_size: int = Field(100, ge=1, le=100, description="PDD page_size (max 100).")
    pdd_min_safety_lag_s: float = Field(
        180.0, ge=0, description="PDD windows end at least this far behind now (PDD documents 3 min against loss)."
    )
    pdd_simulator_port: int = Field(8703, description="PDD simulator port.")
    kuaishou_base_url: str = Field("http://127.0.0.1:8704", description="Kuaishou open API root (openapi host).")
    kuaishou_app_key: str = Field("ks-dev-app-key", description="Kuaishou appkey.")
    kuaishou_sign_secret: SecretStr = Field(SecretStr("ks-dev-sign-secret"), description="Kuaishou signSecret.")
    kuaishou_access_token: SecretStr = Field(SecretStr("ks-dev-token"), description="Kuaishou seller access_token.")
    kuaishou_sign_method: str = Field("HMAC_SHA256", description="Kuaishou signMethod: HMAC_SHA256 or MD5.")
    kuaishou_page_size: int = Field(100, ge=1, le=100, description="Kuaishou pageSize (max 100).")
    kuaishou_simulator_port: int = Field(8704, description="Kuaishou simulator port.")
    # Subsystems. OMS (旺店通 旗舰版 open API) and finance (the ledger's voucher API) are pulled;
    # WMS (奇门 Qimen) and carrier (快递100 Kuaidi100 subscription) push to us.
    oms_base_url: str = Field("http://127.0.0.1:8711/openapi", description="旺店通 旗舰版 open API gateway URL.")
    oms_sid: str = Field("wdt-dev-sid", description="旺店通 seller account (sid).")
    oms_app_key: str = Field("wdt-dev-app-key", description="旺店通 appkey.")
    oms_app_secret: SecretStr = Field(SecretStr("wdt-dev-secret:salt"), description="旺店通 appsecret (secret:salt).")
    oms_page_size: int = Field(100, ge=1, le=200, description="旺店通 page_size.")
    oms_simulator_port: int = Field(8711, description="OMS (旺店通) simulator port.")
    finance_base_url: str = Field("http://127.0.0.1:8714", description="Finance ledger API root.")
    finance_api_key: str = Field("fin-dev-key", description="Finance ledger API key id.")
    finance_api_secret: SecretStr = Field(SecretStr("fin-dev-secret"), description="Finance ledger API HMAC secret.")
    finance_page_size: int = Field(200, ge=1, le=500, description="Finance voucher page size.")
    finance_simulator_port: int = Field(8714, description="Finance ledger simulator port.")
    wms_app_key: str = Field("qimen-dev-app-key", description="奇门 app_key the WMS signs with.")
    wms_app_secret: SecretStr = Field(SecretStr("qimen-dev-secret"), description="奇门 app secret (sign key).")
    wms_customer_id: str = Field("ot-dev-customer", description="奇门 customerId of the merchant at the WMS.")
    wms_webhook_port: int = Field(8736, description="WMS (奇门) push receiver port.")
    wms_simulator_port: int = Field(8712, description="WMS simulator port.")
    carrier_salt: SecretStr = Field(
        SecretStr("kd100-dev-salt"), description="快递100 subscription salt (push sign key)."
    )
    carrier_webhook_port: int = Field(8735, description="Carrier (快递100) push receiver port.")
    carrier_simulator_port: int = Field(8713, description="Carrier simulator port.")
    push_watermark_interval_s: float = Field(
        5.0, gt=0, description="How often a push-only receiver vouches for its source (in-band watermark)."
    )
    push_slack_s: float = Field(
        5.0, ge=0, description="A push-only source vouches for now - this (pushes arrive within it)."
    )
    push_silence_s: float = Field(
        300.0, gt=0, description="A push-only source stops vouching after this long without a delivery."
    )

    def kafka_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every confluent-kafka client we create."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.kafka_security}
