"""The receiver's settings, from the environment (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.shopify.reader import MoneyLeg
from adapters.shopify.sku import DEFAULT_SKU_FALLBACK, PLACEHOLDERS, SkuFallback
from contracts.events.common import Channel


class ShopifySettings(BaseSettings):
    """Every field is an `OMS_SHOPIFY_<FIELD>` environment variable; the broker and the
    topic namespace also answer to the names the services use."""

    # populate_by_name: code (tests) may pass `kafka_bootstrap_servers=` too.
    model_config = SettingsConfigDict(
        env_prefix="OMS_SHOPIFY_", extra="ignore", frozen=True, populate_by_name=True
    )

    webhook_secret: SecretStr = Field(
        min_length=1,
        description="The app's client secret (or the store's webhook signing secret): "
        "the key of the X-Shopify-Hmac-Sha256 signature",
    )
    channel: Channel = Field(default="shopify", description="Channel name on the orders")
    money: MoneyLeg = Field(
        default=MoneyLeg.SHOP,
        description="Which of Shopify's amounts to read: `shop` (the shop currency, which "
        "the ERP posts in) or `presentment` (the currency the buyer paid in)",
    )
    sku_fallback: str = Field(
        default=DEFAULT_SKU_FALLBACK.template,
        description="The SKU of a line without one, from its ids: "
        + ", ".join(f"{{{placeholder}}}" for placeholder in PLACEHOLDERS),
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "OMS_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_namespace: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_-]*$",
        validation_alias=AliasChoices("OMS_SHOPIFY_TOPIC_NAMESPACE", "OMS_TOPIC_NAMESPACE"),
        description="Prefix of the inbound topic, as the services' OMS_TOPIC_NAMESPACE",
    )
    deliveries_path: Path = Field(
        default=Path(".local/shopify-webhooks.sqlite3"),
        description="SQLite file remembering the webhook ids already handled",
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8010, ge=0, le=65535)
    publish_timeout_seconds: float = Field(
        default=4.0,
        gt=0,
        description="How long to wait for the broker before answering 503; Shopify gives "
        "up on a delivery after 5 seconds",
    )
    max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)

    @field_validator("sku_fallback")
    @classmethod
    def _sku_fallback_makes_skus(cls, template: str) -> str:
        SkuFallback(template)  # raises ValueError, naming what is wrong
        return template
