"""What happens to each consumed record, in one place:

read its type from the `ce_type` header → (a type the service does not apply: skipped
unread, its offset committed) → decode → (invalid: dead letter, or the service's answer)
→ the valid events of the batch applied together, set-based (`services.kit.batch`) → the
caller commits the offsets.

When applying a batch fails, the transaction rolls back. A transient failure (database
or broker away, a serialization conflict, a deadlock) retries the whole batch with backoff;
one that outlasts the delivery hands every record back for redelivery (never skipped).
Any other failure splits the batch in two halves, applied in order, and so on down to the
one record at fault, which is tried a few times and then dead-lettered: the others keep
their effect, once each. After a record handed back for redelivery, the later records of
its partition are handed back too, so a later event of an order never overtakes an
earlier one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from contracts.base import Event
from contracts.catalogue import UnknownEventType, event_class_for, events_on
from contracts.wire import (
    HEADER_CORRELATION_ID,
    HEADER_ID,
    HEADER_TYPE,
    InvalidEvent,
    decode,
    header_map,
)
from services.kit import inbox
from services.kit.batch import BatchWork, Consumed, Router, consumer_span
from services.kit.dead_letters import ConsumedRecord, DeadLetterPublisher
from services.kit.emitted import Cause
from services.kit.errors import is_transient
from services.kit.logs import get_logger
from services.kit.metrics import Metrics
from services.kit.topics import TopicNames
from services.kit.unit_of_work import UnitOfWork

log = get_logger(__name__)

InvalidRecordHandler = Callable[[UnitOfWork, ConsumedRecord, InvalidEvent], Awaitable[bool]]
"""Turns an invalid record into a business answer (an order service rejects a malformed
order with OrderRejected); returns False when it cannot, and the record is dead-lettered."""


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"
    RETRY_LATER = "retry_later"

    @property
    def commits_offset(self) -> bool:
        return self is not Outcome.RETRY_LATER


class _Unanswerable(Exception):
    """The invalid-record handler declined: the record goes to the dead-letter topic."""


class _RetryPermanent(Exception):
    """Marks a non-transient failure that still has tries left (retried by tenacity)."""


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, _RetryPermanent) or is_transient(error)


Item = tuple[int, Consumed]
"""A valid record of the batch: its position and its event."""


class EventPipeline:
    def __init__(
        self,
        *,
        service: str,
        connect: Callable[[], Any],
        router: Router[Any],
        source: str,
        unit_of_work: Callable[[Cause | None], UnitOfWork],
        dead_letters: DeadLetterPublisher,
        metrics: Metrics,
        max_attempts: int = 3,
        transient_retry_seconds: float = 20.0,
        invalid_record_handler: InvalidRecordHandler | None = None,
        topic_names: TopicNames | None = None,
        tracer: Tracer | None = None,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        """`connect()` is an async context manager giving an asyncpg connection (a pool's
        `acquire()`); `unit_of_work` serves the rare answers to invalid records."""
        self._service = service
        self._connect = connect
        self._router = router
        self._source = source
        self._unit_of_work = unit_of_work
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._transient_retry_seconds = transient_retry_seconds
        self._invalid_record_handler = invalid_record_handler
        self._topic_names = topic_names or TopicNames()
        self._tracer = tracer or trace.get_tracer(__name__)
        self._on_committed = on_committed

    async def process_batch(self, records: Sequence[ConsumedRecord]) -> list[Outcome]:
        """Applies records in the order given; returns their outcomes in that order."""
        outcomes: list[Outcome | None] = [None] * len(records)
        waiting: set[tuple[str, int]] = set()
        run: list[Item] = []
        for position, record in enumerate(records):
            if self._skipped_unread(record):
                outcomes[position] = Outcome.IGNORED
                continue
            headers = header_map(record.headers)
            try:
                event = decode(headers, record.value)
                self._check_topic(record.topic, event)
            except InvalidEvent as error:
                await self._flush(run, outcomes, waiting)
                if (record.topic, record.partition) in waiting:
                    outcomes[position] = Outcome.RETRY_LATER
                    continue
                outcome = await self._process_invalid(record, headers, error)
                if outcome is Outcome.RETRY_LATER:
                    waiting.add((record.topic, record.partition))
                outcomes[position] = outcome
                continue
            if not self._router.applies(event.event_type()):
                outcomes[position] = Outcome.IGNORED
                continue
            run.append((position, Consumed(event, _cause_of(event, headers), record, headers)))
        await self._flush(run, outcomes, waiting)
        final = _held_back_after_retries(records, outcomes)
        self._count(records, final)
        return final

    def _skipped_unread(self, record: ConsumedRecord) -> bool:
        """A catalogue event of its topic that this service does not apply: skipped on its
        `ce_type` header alone. Unknown or missing types, and types that do not travel on
        the topic, are read, to be dead-lettered (or answered) with the reason."""
        raw_type = next((value for name, value in record.headers if name == HEADER_TYPE), None)
        if raw_type is None:
            return False
        event_type = raw_type.decode("utf-8", "replace")
        if self._router.applies(event_type):
            return False
        try:
            event_class = event_class_for(event_type)
        except UnknownEventType:
            return False
        allowed = events_on(self._topic_names.logical(record.topic))
        return allowed is None or event_class in allowed

    async def _flush(
        self, run: list[Item], outcomes: list[Outcome | None], waiting: set[tuple[str, int]]
    ) -> None:
        if run:
            for position, outcome in (await self._apply_run(list(run), waiting)).items():
                outcomes[position] = outcome
            run.clear()

    async def _apply_run(
        self, run: list[Item], waiting: set[tuple[str, int]]
    ) -> dict[int, Outcome]:
        """Applies the run together; on a failure that is not transient, each half on its
        own, down to the one record at fault."""
        held = {
            position: Outcome.RETRY_LATER for position, item in run if _partition(item) in waiting
        }
        run = [(position, item) for position, item in run if position not in held]
        if not run:
            return held
        try:
            return held | await self._apply_together_retrying_transient(run)
        except _TransientOutlasted:
            waiting.update(_partition(item) for _, item in run)
            return held | {position: Outcome.RETRY_LATER for position, _ in run}
        except Exception as error:
            if len(run) == 1:
                return held | await self._apply_alone(run[0], waiting, error)
            log.info("batch rolled back; splitting it", events=len(run), error=repr(error))
            middle = len(run) // 2
            first = await self._apply_run(run[:middle], waiting)
            return held | first | await self._apply_run(run[middle:], waiting)

    async def _apply_together_retrying_transient(self, run: list[Item]) -> dict[int, Outcome]:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
                stop=stop_after_delay(self._transient_retry_seconds),
                before_sleep=lambda _state: self._metrics.transient_retries.labels(
                    self._service
                ).inc(),
                reraise=False,
            ):
                with attempt:
                    return await self._apply_together(run)
        except RetryError as exhausted:
            log.warning(
                "transient failure outlasted this delivery; it will be redelivered",
                error=repr(exhausted.last_attempt.exception()),
            )
            raise _TransientOutlasted from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _apply_alone(
        self, item: Item, waiting: set[tuple[str, int]], error: Exception
    ) -> dict[int, Outcome]:
        """The one record at fault: tried again up to the attempts allowed (it may have
        failed only because of another), then dead-lettered."""
        position, consumed = item
        for attempt in range(2, self._max_attempts + 1):
            log.warning("handler failed", attempt=attempt - 1, error=repr(error))
            try:
                return await self._apply_together_retrying_transient([item])
            except _TransientOutlasted:
                waiting.add(_partition(consumed))
                return {position: Outcome.RETRY_LATER}
            except Exception as again:
                error = again
        outcome = await self._dead_letter(consumed.record, error, attempts=self._max_attempts)
        if outcome is Outcome.RETRY_LATER:
            waiting.add(_partition(consumed))
        return {position: outcome}

    async def _apply_together(self, run: list[Item]) -> dict[int, Outcome]:
        """Every event of the run in one transaction; each consumer span ends with the
        commit, which is when its effect happened."""
        started = time.perf_counter()
        spans: list[Span] = []
        try:
            async with self._connect() as connection, connection.transaction():
                work = BatchWork(
                    connection,
                    source=self._source,
                    topic_for=self._topic_names.of_event,
                    tracer=self._tracer,
                    service=self._service,
                )
                spans = work.spans
                fresh = await work.claim([consumed for _, consumed in run])
                await self._router.apply(work, fresh)
                emitted = await work.record_outbox()
        except Exception as error:
            for span in spans:
                span.set_status(Status(StatusCode.ERROR, f"rolled back: {error!r}"))
            raise
        finally:
            for span in spans:
                span.end()
        if emitted and self._on_committed is not None:
            self._on_committed()
        fresh_ids = {consumed.event.event_id for consumed in fresh}
        claimed: set[uuid.UUID] = set()
        outcomes: dict[int, Outcome] = {}
        for position, consumed in run:
            event_id = consumed.event.event_id
            first_time = event_id in fresh_ids and event_id not in claimed
            claimed.add(event_id)
            outcomes[position] = Outcome.HANDLED if first_time else Outcome.DUPLICATE
        elapsed = time.perf_counter() - started
        for event_type in {consumed.event.event_type() for _, consumed in run}:
            self._metrics.handler_seconds.labels(self._service, event_type).observe(elapsed)
        return outcomes

    def _count(self, records: Sequence[ConsumedRecord], outcomes: Sequence[Outcome]) -> None:
        """Counted once the outcomes are final, a label set at a time."""
        counts = Counter(
            (record.topic, outcome) for record, outcome in zip(records, outcomes, strict=True)
        )
        for (topic, outcome), count in counts.items():
            self._metrics.events_consumed.labels(self._service, topic, outcome.value).inc(count)
            if outcome is Outcome.DUPLICATE:
                self._metrics.inbox_duplicates.labels(self._service).inc(count)

    def _check_topic(self, topic: str, event: Event) -> None:
        """A valid event on the wrong topic (a StockReserved on the channel topic) is not
        acted on: only the topic's own producer may make its facts."""
        allowed = events_on(self._topic_names.logical(topic))
        if allowed is not None and type(event) not in allowed:
            raise InvalidEvent(f"{event.event_type()} does not travel on {topic}")

    async def _process_invalid(
        self, record: ConsumedRecord, headers: Mapping[str, str], error: InvalidEvent
    ) -> Outcome:
        invalid_record_handler = self._invalid_record_handler
        if invalid_record_handler is None:
            return await self._dead_letter(record, error, attempts=1)
        event_id = _uuid_or_none(headers.get(HEADER_ID)) or uuid.uuid5(
            uuid.NAMESPACE_URL, f"kafka:{record.topic}/{record.partition}/{record.offset}"
        )

        async def answer(uow: UnitOfWork) -> Outcome:
            is_new = await inbox.claim(
                uow.connection,
                event_id=event_id,
                event_type=headers.get(HEADER_TYPE, "invalid"),
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            if not is_new:
                return Outcome.DUPLICATE
            if await invalid_record_handler(uow, record, error):
                return Outcome.HANDLED
            raise _Unanswerable(error)

        cause = Cause(event_id=event_id, correlation_id=str(event_id))
        with trace.use_span(consumer_span(self._tracer, record, headers), end_on_exit=True):
            try:
                return await self._apply_answer(record, answer, cause)
            except _Unanswerable:
                return await self._dead_letter(record, error, attempts=1)

    async def _apply_answer(
        self, record: ConsumedRecord, work: Callable[[UnitOfWork], Awaitable[Outcome]], cause: Cause
    ) -> Outcome:
        """Runs `work` in one unit of work, retrying as the failure deserves."""
        failures = 0
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_worth_retrying),
                wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
                stop=stop_after_delay(self._transient_retry_seconds),
                reraise=False,
            ):
                with attempt:
                    try:
                        async with self._unit_of_work(cause) as uow:
                            return await work(uow)
                    except _Unanswerable:
                        raise
                    except Exception as error:
                        if is_transient(error):
                            raise
                        failures += 1
                        if failures >= self._max_attempts:
                            return await self._dead_letter(record, error, attempts=failures)
                        raise _RetryPermanent(error) from error
        except RetryError:
            return Outcome.RETRY_LATER
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _dead_letter(
        self, record: ConsumedRecord, error: BaseException, attempts: int
    ) -> Outcome:
        try:
            await self._dead_letters.publish(record, error, attempts)
        except Exception as publish_error:
            # Without the dead letter safely stored the record must not be skipped.
            log.error("dead letter could not be published", error=repr(publish_error))
            await asyncio.sleep(1.0)
            return Outcome.RETRY_LATER
        self._metrics.dead_letters.labels(self._service, type(error).__name__).inc()
        log.warning(
            "event dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=f"{type(error).__name__}: {error}",
            dead_letter_topic=self._dead_letters.topic,
        )
        return Outcome.DEAD_LETTERED


class _TransientOutlasted(Exception):
    """A transient failure lasted longer than one delivery may wait for it."""


def _held_back_after_retries(
    records: Sequence[ConsumedRecord], outcomes: Sequence[Outcome | None]
) -> list[Outcome]:
    """Once a record of a partition is handed back for redelivery, every later record of
    that partition is too, whatever became of it here (a skipped one included): its offset
    must not be committed past the one waiting."""
    waiting: set[tuple[str, int]] = set()
    final = []
    for record, outcome in zip(records, outcomes, strict=True):
        partition = (record.topic, record.partition)
        if outcome is None or outcome is Outcome.RETRY_LATER or partition in waiting:
            waiting.add(partition)
            final.append(Outcome.RETRY_LATER)
        else:
            final.append(outcome)
    return final


def _partition(consumed: Consumed) -> tuple[str, int]:
    return consumed.record.topic, consumed.record.partition


def _cause_of(event: Event, headers: Mapping[str, str]) -> Cause:
    return Cause(
        event_id=event.event_id,
        correlation_id=headers.get(HEADER_CORRELATION_ID) or str(event.event_id),
    )


def _uuid_or_none(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None
