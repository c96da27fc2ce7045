"""The CSV importer's command line without a broker: exit codes, the rejected file, the
summary. Publishing for real: test_csv_import_integration.py."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.csv_import import app
from adapters.marketplace_feed import COLUMNS
from tests.adapters.feeds import EXAMPLE, TAXED_EXAMPLE

runner = CliRunner()


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return Path(shutil.copy(EXAMPLE, tmp_path / "feed.csv"))


def good_only(example: Path) -> Path:
    lines = example.read_text(encoding="utf-8").splitlines(keepends=True)
    path = example.with_name("good.csv")
    path.write_text("".join(line for line in lines if "MP-10005" not in line), encoding="utf-8")
    return path


def test_dry_run_reports_and_writes_the_rejected_rows_with_reasons(example: Path) -> None:
    result = runner.invoke(app, [str(example), "--dry-run"])

    assert result.exit_code == 1, result.output
    assert "Dry run: nothing published" in result.output
    assert "line 8: quantity: 'two' is not a positive whole number" in result.output
    rejected = list(csv.DictReader(example.with_name("feed.rejected.csv").open()))
    assert [(row["external_order_id"], row["sku"], row["reason"]) for row in rejected] == [
        ("MP-10005", "RUG-WOOL", "quantity: 'two' is not a positive whole number"),
        ("MP-10005", "MUG-STONE", "order MP-10005 not imported: see line 8"),
    ]


def test_rejected_out_chooses_where_the_rejected_rows_go(example: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "reasons.csv"
    target.parent.mkdir()

    result = runner.invoke(app, [str(example), "--dry-run", "--rejected-out", str(target)])

    assert result.exit_code == 1
    assert len(list(csv.DictReader(target.open()))) == 2


def test_dry_run_of_a_good_feed_exits_0_and_writes_no_rejected_file(example: Path) -> None:
    result = runner.invoke(app, [str(good_only(example)), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert not example.with_name("good.rejected.csv").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("external_order_id,sku\nMP-1,A\n", "required columns missing from the header"),
        ("", "the file is empty"),
        (b"external_order_id\xff\n", "is not UTF-8 text"),
    ],
    ids=["missing", "header", "empty", "encoding"],
)
def test_unusable_input_exits_2_with_the_reason(
    tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "feed.csv"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)

    result = runner.invoke(app, [str(path)])

    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_invalid_channel_name_exits_2(example: Path) -> None:
    result = runner.invoke(app, [str(example), "--channel", "Market Place", "--dry-run"])

    assert result.exit_code == 2
    assert "--channel 'Market Place'" in result.output


def test_an_unreachable_broker_exits_3_and_says_to_run_again(example: Path) -> None:
    result = runner.invoke(
        app, [str(good_only(example)), "--bootstrap", "127.0.0.1:1", "--timeout", "3"]
    )

    assert result.exit_code == 3, result.output
    assert "not sent" in result.output
    assert "Run the same command again" in result.output


def test_help_says_a_second_run_is_safe() -> None:
    result = runner.invoke(app, ["--help"])

    assert result.exit_code == 0
    assert "Running it again on the same file is safe" in " ".join(result.output.split())


def test_help_names_every_column_and_the_formula_of_each_computed_amount() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})

    assert result.exit_code == 0
    assert [column for column in COLUMNS if column not in result.output] == []
    for formula in (
        "line_total       = unit_price x quantity",
        "discounted_total = line_total - line_discount - its order discount share",
        "discounted_price = price - shipping_discount",
        "amount x rate / (1 + rate)",
        "total            = subtotal - total_discounts + shipping_charge",
        "+ (0 if taxes_included else total_tax)",
    ):
        assert formula in result.output


def test_dry_run_of_the_taxed_example_finds_every_order_valid(tmp_path: Path) -> None:
    feed = Path(shutil.copy(TAXED_EXAMPLE, tmp_path / "taxed.csv"))

    result = runner.invoke(app, [str(feed), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "│ valid    │      4 │    7 │" in result.output
