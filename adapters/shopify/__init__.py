"""Receives Shopify's `orders/create` webhooks and publishes each order on the inbound
topic as an `OrderSubmitted` (`python -m adapters.shopify`, or `oms-shopify`)."""
