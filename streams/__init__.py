"""Faust stream processing: normalise raw events, keep the order twin, raise alerts."""
