"""One module per source. Each exposes ``SOURCE`` and ``normalise(doc, raw, ctx)``.

``normalise`` returns canonical records (dicts matching the Avro schemas) or raises
:class:`streams.normalise.model.Reject`. Mapping tables are module-level dicts (data),
with values taken from the platforms' documentation.
"""
