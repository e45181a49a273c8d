"""Inventory metrics, on the pipeline's registry. Bounded labels only: never a SKU or an order."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class InventoryMetrics:
    skus_oversold: Gauge
    skus_low: Gauge
    skus_diverged: Gauge
    reservations_open: Gauge
    reservations_sent: Counter
    reservation_changes: Counter
    stock_facts: Counter
    levels_published: Counter
    commands: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> InventoryMetrics:
        return cls(
            skus_oversold=Gauge(
                "ordertwin_inventory_skus_oversold",
                "SKUs whose available stock is negative, in this worker's partitions.",
                registry=registry,
            ),
            skus_low=Gauge(
                "ordertwin_inventory_skus_low",
                "SKUs at or below their low-stock limit, in this worker's partitions.",
                registry=registry,
            ),
            skus_diverged=Gauge(
                "ordertwin_inventory_skus_diverged",
                "SKU-warehouses whose WMS snapshot disagrees with its movements, in this worker's partitions.",
                registry=registry,
            ),
            reservations_open=Gauge(
                "ordertwin_inventory_reservations_open",
                "Order lines currently RESERVED (paid, open), in this worker's partitions.",
                registry=registry,
            ),
            reservations_sent=Counter(
                "ordertwin_inventory_reservations_sent",
                "Reservation changes the twin sent to the inventory stage, by target state.",
                ["state"],
                registry=registry,
            ),
            reservation_changes=Counter(
                "ordertwin_inventory_reservation_changes",
                "Reservation changes received, by state and outcome (applied = a line moved; "
                "ignored = duplicate, replay or older). The applied rate per state is the "
                "reservation / release rate.",
                ["state", "outcome"],
                registry=registry,
            ),
            stock_facts=Counter(
                "ordertwin_inventory_stock_facts",
                "WMS stock facts received, by kind (SNAPSHOT/MOVEMENT) and outcome (applied/ignored).",
                ["kind", "outcome"],
                registry=registry,
            ),
            levels_published=Counter(
                "ordertwin_inventory_levels_published",
                "InventoryLevel records written to inventory.levels.",
                registry=registry,
            ),
            commands=Counter(
                "ordertwin_inventory_commands",
                "ChannelStockLock recommendations written to inventory.commands, by channel.",
                ["channel"],
                registry=registry,
            ),
        )
