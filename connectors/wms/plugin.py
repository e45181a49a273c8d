"""WMS (奇门 Qimen ERP<->WMS standard): push-only, the WMS calls our Qimen endpoint and Qimen
redelivers failed calls; the receiver vouches for the source while it is heard."""

from __future__ import annotations

from connectors.registry import SourcePlugin
from connectors.wms.push import make_spec
from connectors.wms.simulator import start_scenario_simulator, start_simulator

PLUGIN = SourcePlugin(
    name="wms",
    mode="webhook",
    doc="奇门 Qimen WMS->ERP calls (deliveryorder.confirm, orderprocess.report, returnorder.confirm, "
    "stockchange.report, inventory.report; md5 sign over query params + body, format=json), "
    "dedup by method + body hash, in-band watermarks while heard",
    webhook=make_spec,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
)
