"""`oms dead-letters`: records a consumer could not parse or apply, read straight from
the dead-letter topics on Kafka, and replayed to where they came from."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal, get_args

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from cli.commands.common import JsonFlag, details
from cli.dlq import DeadLetter, escaped_preview, parse_json
from cli.kafka_io import (
    ReplayResult,
    dead_letter_topic_of,
    fetch_dead_letters,
    read_dead_letters,
    replay,
)
from cli.parsing import DeadLetterId, parse_dead_letter_id
from cli.render import table, when
from cli.session import CliFailure, ExitCode, Session, operator_session

app = typer.Typer(
    help="List, inspect and replay dead letters: records a service could not parse or "
    "apply, kept on its consumer group's dead-letter topic (oms.deadletter.<group>.v1).",
    no_args_is_help=True,
)

ConsumerGroup = Literal["order", "inventory", "fulfilment", "returns", "notification"]
"""The catalogue's consumer groups (a test checks they match `CONSUMER_GROUPS`)."""
IdArgument = Annotated[
    DeadLetterId,
    typer.Argument(
        parser=parse_dead_letter_id,
        metavar="ID",
        help="<group>:<partition>:<offset> as `oms dead-letters list` shows it, e.g. order:0:17",
        show_default=False,
    ),
]
ERROR_WIDTH = 100


def _short(text: str | None, width: int = ERROR_WIDTH) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _source(letter: DeadLetter) -> str:
    return f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"


@app.command("list")
def list_dead_letters(
    context: typer.Context,
    group: Annotated[
        ConsumerGroup | None,
        typer.Option(help="Only this consumer group's dead letters"),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Only the newest this many (per group and overall)")
    ] = 50,
    json_flag: JsonFlag = False,
) -> None:
    """Dead letters, oldest first (the newest --limit of them), with their ids, where
    they came from and why they failed.

    Example: oms dead-letters list --group order
    """
    groups = [group] if group else list(get_args(ConsumerGroup))
    with operator_session(context, json_flag) as session:
        letters = asyncio.run(read_dead_letters(session.settings, groups, limit=limit))
        if session.json_mode:
            session.out.json({"items": [letter.summary() for letter in letters]})
            return
        session.out.console.print(
            table(
                f"{len(letters)} dead letter(s)",
                ("id", "failed at", "from", "event", "tries", "error"),
                (
                    (
                        str(letter.id),
                        when(letter.failed_at),
                        _source(letter),
                        letter.header("ce_type"),
                        letter.attempts,
                        _short(letter.error_message),
                    )
                    for letter in letters
                ),
            )
        )
        if letters:
            session.out.note("Read one in full: oms dead-letters show ID")


async def _fetch(session: Session, ids: list[DeadLetterId]) -> list[DeadLetter]:
    found = await fetch_dead_letters(session.settings, ids)
    missing = [str(letter_id) for letter_id, letter in found.items() if letter is None]
    if missing:
        raise CliFailure(
            ExitCode.NOT_FOUND,
            f"no dead letter {', '.join(missing)} (topics "
            + ", ".join(sorted({dead_letter_topic_of(session.settings, i.group) for i in ids}))
            + ")",
            detail={"missing": missing},
        )
    return [letter for letter in found.values() if letter is not None]


@app.command("show")
def show_dead_letter(
    context: typer.Context, dead_letter_id: IdArgument, json_flag: JsonFlag = False
) -> None:
    """One dead letter in full: the error, every header and the record's value (pretty
    JSON when it parses, else an escaped preview of the bytes).

    Example: oms dead-letters show order:0:17
    """
    with operator_session(context, json_flag) as session:
        [letter] = asyncio.run(_fetch(session, [dead_letter_id]))
        if session.json_mode:
            session.out.json(letter.details())
            return
        console = session.out.console
        console.print(
            details(
                [
                    ("Dead letter", str(letter.id)),
                    ("Failed at", when(letter.failed_at)),
                    ("Consumer group", letter.consumer_group),
                    ("Tries", letter.attempts),
                    ("Error class", letter.error_class),
                    ("Error", letter.error_message),
                    ("From", _source(letter)),
                    ("Key", None if letter.key is None else escaped_preview(letter.key)),
                ]
            )
        )
        console.print(
            table(
                "Headers",
                ("name", "value"),
                (
                    (name, None if raw is None else escaped_preview(raw))
                    for name, raw in letter.headers
                ),
            )
        )
        _print_value(session, letter)


def _print_value(session: Session, letter: DeadLetter) -> None:
    console = session.out.console
    if letter.value is None:
        console.print(
            Text(
                f"Value: not copied ({letter.value_omitted_bytes} bytes, too large); replay "
                f"reads it from {_source(letter)}.",
                style="yellow",
            )
        )
        return
    parsed, is_json = parse_json(letter.value)
    if is_json:
        console.print(Text(f"Value ({len(letter.value)} bytes, JSON):", style="bold"))
        console.print_json(data=parsed)
    else:
        console.print(
            Panel(
                Text(escaped_preview(letter.value)),
                title=f"Value ({len(letter.value)} bytes, not JSON; escaped)",
                title_align="left",
            )
        )


@app.command("replay")
def replay_dead_letters(
    context: typer.Context,
    ids: Annotated[
        list[DeadLetterId] | None,
        typer.Argument(
            parser=parse_dead_letter_id,
            metavar="ID",
            help="Dead letters to replay, e.g. order:0:17 order:2:4",
            show_default=False,
        ),
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter of --group")
    ] = False,
    group: Annotated[
        ConsumerGroup | None,
        typer.Option(help="The consumer group, with --all"),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --all")] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Publish each dead letter's original record (its key, value and headers, without
    the dlq_* ones) back to the topic and partition it came from, for its consumer to
    try again: after a fix has been deployed, or when the failure was passing. A value
    that was too large to copy into the dead letter is read from the source topic.

    Replaying is safe to repeat: every consumer records the ids of the events it has
    handled (its inbox) and skips one it has seen, so an event replayed twice takes
    effect once. A record that still fails is dead-lettered again, under a new id.

    Examples:

    oms dead-letters replay order:0:17 order:2:4
    oms dead-letters replay --all --group inventory --yes
    """
    if ids and replay_all:
        raise typer.BadParameter("give IDs or --all, not both", param_hint="ID / --all")
    if not ids and not replay_all:
        raise typer.BadParameter("give the IDs to replay, or --all --group G", param_hint="ID")
    if replay_all and group is None:
        raise typer.BadParameter("--all needs --group (one group at a time)", param_hint="--group")
    with operator_session(context, json_flag) as session:
        if replay_all:
            assert group is not None
            letters = asyncio.run(read_dead_letters(session.settings, [group]))
            if letters and not yes:
                typer.confirm(
                    f"Replay all {len(letters)} dead letters of group {group!r}?",
                    abort=True,
                    err=True,
                )
        else:
            letters = asyncio.run(_fetch(session, list(dict.fromkeys(ids or []))))
        results = _replay_with_progress(session, letters)
        _report(session, results)


def _replay_with_progress(session: Session, letters: list[DeadLetter]) -> list[ReplayResult]:
    if len(letters) < 2:
        return asyncio.run(replay(session.settings, letters))
    with Progress(
        TextColumn("Replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=session.out.notes,
    ) as progress:
        task = progress.add_task("replay", total=len(letters))
        return asyncio.run(
            replay(session.settings, letters, lambda _result: progress.advance(task))
        )


def _report(session: Session, results: list[ReplayResult]) -> None:
    failed = [result for result in results if result.error is not None]
    document: dict[str, Any] = {
        "replayed": len(results) - len(failed),
        "failed": len(failed),
        "results": [result.as_json() for result in results],
    }
    if not session.json_mode:
        session.out.console.print(
            table(
                f"Replayed {document['replayed']} of {len(results)}",
                ("dead letter", "to", "partition", "offset", "error"),
                ((str(r.letter_id), r.topic, r.partition, r.offset, r.error) for r in results),
            )
        )
    if failed:
        raise CliFailure(
            failed[0].exit_code,
            f"{len(failed)} of {len(results)} dead letters were not replayed: {failed[0].error}",
            detail=document,
        )
    if session.json_mode:
        session.out.json(document)
