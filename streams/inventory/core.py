"""The inventory stage's pure step: one fact in, the new SKU row and what to publish out.

``step`` = fold the fact (``stock``), settle orders that hold nothing, prune old history,
recompute the levels once, open/close alert episodes (``rules.evaluate``), keep the levels
that changed, run the channel guard. Raising is left to the caller, which knows the WMS
watermark (``rules.raise_due``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.inventory import rules, stock
from streams.inventory.rules import Alert, Command, Config
from streams.inventory.stock import Level, State


@dataclass(frozen=True)
class Outcome:
    state: State
    changed: bool  # False: a duplicate, a replay or an older fact; nothing to write or send
    levels: list[Level] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


def fold(
    state: State, config: Config, *, change: dict[str, Any] | None = None, event: dict[str, Any] | None = None
) -> State:
    """Fold one fact and settle; ``state`` itself when the fact changes nothing."""
    if change is not None:
        folded = stock.apply_change(state, change)
    elif event is not None:
        folded = stock.apply_event(state, event)
    else:
        raise ValueError("fold needs a change or an event")
    if folded is state:
        return state
    return stock.settle(folded)


def step(
    state: State,
    *,
    config: Config,
    now: datetime,
    change: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
) -> Outcome:
    """Fold one ReservationChange or one InventoryEvent into the SKU's row."""
    folded = fold(state, config, change=change, event=event)
    if folded is state:
        return Outcome(state, False)
    folded = stock.prune(
        folded, retention_ms=max(config.retention_ms, config.guard_window_ms), window_ms=config.guard_window_ms
    )
    current = stock.levels(folded)
    folded, resolved = rules.evaluate(folded, config, now, current)
    folded, changed_levels = stock.publish(folded, current)
    folded, commands = rules.guard(folded, config, now, current)
    return Outcome(folded, True, changed_levels, resolved, commands)
