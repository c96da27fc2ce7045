"""The benchmark of the whole order flow: `python -m bench --help`."""
