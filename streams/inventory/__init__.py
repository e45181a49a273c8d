"""Inventory: stock per SKU and warehouse, reservations driven by the order twin, oversell alerts."""
