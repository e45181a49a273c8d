"""快递100 (Kuaidi100) carrier tracking: subscription pushes, no pull.

Push-only (mode ``webhook``): Kuaidi100 pushes every trace change to the callback URL and
retries a push whose answer is not success, and its real-time query (``poll/query.do``) answers
one waybill at a time - there is no incremental listing to reconcile from by cursor. The runner
serves the receiver and vouches for the source (in-band watermarks) while Kuaidi100 is heard.
"""

from __future__ import annotations

from connectors.carrier.push import make_spec
from connectors.carrier.simulator import start_scenario_simulator, start_simulator
from connectors.registry import SourcePlugin

PLUGIN = SourcePlugin(
    name="carrier",
    mode="webhook",
    doc="快递100 subscription push (form param + sign = upper MD5(param + salt), callback URL ?order_id=, "
    "dedup on the param text); push-only, vouched while heard",
    webhook=make_spec,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
)
