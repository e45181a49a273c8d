"""The order twin: one mirrored record per real order, across every system."""
