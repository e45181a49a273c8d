"""Shopify: order webhooks, repaired by a periodic Admin REST ``orders.json`` reconciliation pull."""
