"""Sales-channel adapters: how orders reach the inbound topic.

- `adapters.publisher`: the library a channel adapter imports to publish OrderSubmitted
  (contract check, key, CloudEvents headers, idempotent producer, acknowledgement).
- `adapters.shopify`: the Shopify `orders/create` webhook receiver (`oms-shopify`).
- `adapters.csv_import`: the marketplace CSV feed importer (`python -m adapters.csv_import`),
  with the feed's parsing and checks in `adapters.marketplace_feed`.
"""
