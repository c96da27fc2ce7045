"""The demo that `make up` runs: a catalogue, warehouses and stock, then a stream of
orders from a web shop pushed through the whole flow while the terminal shows them move."""
