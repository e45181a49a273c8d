"""Connectors: pull (or receive) platform records and publish them unchanged to ``raw.<source>``.

Layout per source (``connectors/<source>/``): ``client`` (HTTP only), ``source`` (adapts the
client to the generic :mod:`connectors.pull` engine), ``simulator`` (a faithful fake platform
for tests and demos). Shared: :mod:`connectors.publish` (Kafka only), :mod:`connectors.state`
(durable cursors), :mod:`connectors.backoff`, :mod:`connectors.runner` (entry points).
"""
