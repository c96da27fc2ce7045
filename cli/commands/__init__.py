"""The command groups of `oms`."""
