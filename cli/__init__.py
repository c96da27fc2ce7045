"""The `oms` command-line tool for operators."""
