"""Shopee: order status pushes, repaired by a periodic Open Platform v2 reconciliation pull."""
