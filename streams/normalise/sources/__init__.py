"""One module per source, named after it (``taobao.py``, ``wms.py``...).

Each module exposes:

- ``SOURCE``: the source name (as in ``ordertwin.topics.SOURCES``);
- ``STATUS_TABLES``: every mapping table of the module by name (data, not code), so tests
  can prove the golden fixtures cover every documented value;
- ``normalise(doc, raw, ctx) -> list[dict]``: canonical records (OrderEvent dicts, which
  carry ``order_id``, or InventoryEvent dicts, which carry ``sku`` and no ``order_id``),
  or raise :class:`streams.normalise.model.Reject` with a reason code.
"""
