"""Options and small pieces several command groups use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cli.render import text

JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout (nothing else) instead of tables.",
    ),
]


def details(pairs: Iterable[tuple[str, Any]]) -> Table:
    """A two-column `label  value` block for one object."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in pairs:
        grid.add_row(label, value if isinstance(value, Text) else text(value))
    return grid


def status_text(status: Any) -> Text:
    styles = {
        "cancelled": "red",
        "rejected": "red",
        "failed": "red",
        "delivered": "green",
        "returned": "yellow",
        "refunded": "green",
        "approved": "cyan",
        "shipped": "cyan",
    }
    return Text(str(status), style=styles.get(str(status), "bold"))
