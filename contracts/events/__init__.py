"""The event vocabulary, one module per emitting party; each module lists its `EVENTS`."""
