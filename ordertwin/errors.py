"""One small exception hierarchy; messages say what was wrong and with which input."""

from __future__ import annotations


class OrdertwinError(Exception):
    """Base of every error raised on purpose by ordertwin."""


class ConfigError(OrdertwinError):
    """A setting is missing or inconsistent."""


class SchemaError(OrdertwinError):
    """An Avro schema file is invalid, or a record does not match its schema."""


class DecodeError(OrdertwinError):
    """Bytes on a topic are not a record we can decode (wrong magic, unknown fingerprint)."""


class SourceError(OrdertwinError):
    """A platform or subsystem answered something we cannot use."""
