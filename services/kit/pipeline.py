"""What happens to each consumed record, in one place:

decode → (invalid: dead letter) → route by event type → a unit of work that records the
event id in the inbox and applies the handler's effect → the caller commits the offset.

A batch of records is applied in one unit of work (one commit for all of them), each
record in its own consumer span and cause scope. When anything in the batch fails, the
whole transaction rolls back and its records are applied again one by one, in order, each
in a unit of work of its own: a failure then concerns one record only.

Transient failures are retried with backoff, then handed back for redelivery (never
dead-lettered, never skipped); the records after it on its partition wait for it. Other
failures are tried a few times, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import structlog
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from contracts.base import Event
from contracts.catalogue import events_on
from contracts.wire import (
    HEADER_CORRELATION_ID,
    HEADER_ID,
    HEADER_TYPE,
    InvalidEvent,
    decode,
    header_map,
)
from services.kit import inbox
from services.kit.dead_letters import ConsumedRecord, DeadLetterPublisher
from services.kit.errors import is_transient
from services.kit.logs import get_logger
from services.kit.metrics import Metrics
from services.kit.telemetry import MESSAGE_KEY_ATTRIBUTE, order_span_attributes
from services.kit.topics import TopicNames
from services.kit.unit_of_work import Cause, UnitOfWork

log = get_logger(__name__)

Handler = Callable[[UnitOfWork, Event], Awaitable[None]]
Routes = Mapping[type[Event], Handler]
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


class PermanentFailure(Exception):
    """A handler failed for a reason retrying cannot fix."""


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A record whose event was read: what applying it needs."""

    record: ConsumedRecord
    headers: Mapping[str, str]
    event: Event
    handler: Handler | None


class EventPipeline:
    def __init__(
        self,
        *,
        service: str,
        unit_of_work: Callable[[Cause | None], UnitOfWork],
        routes: Routes,
        dead_letters: DeadLetterPublisher,
        metrics: Metrics,
        max_attempts: int = 3,
        transient_retry_seconds: float = 20.0,
        invalid_record_handler: InvalidRecordHandler | None = None,
        topic_names: TopicNames | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._service = service
        self._unit_of_work = unit_of_work
        self._routes = routes
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._transient_retry_seconds = transient_retry_seconds
        self._invalid_record_handler = invalid_record_handler
        self._topic_names = topic_names or TopicNames()
        self._tracer = tracer or trace.get_tracer(__name__)

    async def process(self, record: ConsumedRecord) -> Outcome:
        """Applies one record in a unit of work of its own."""
        headers = header_map(record.headers)
        with trace.use_span(self._consumer_span(record, headers), end_on_exit=True):
            outcome = await self._process(record, headers)
        self._count(record, outcome)
        return outcome

    async def process_batch(self, records: Sequence[ConsumedRecord]) -> list[Outcome]:
        """Applies records in the order given; returns their outcomes in that order.

        Runs of valid events share one unit of work; an invalid record is answered on its
        own, where it stands. After a RETRY_LATER, the later records of its partition are
        not applied (RETRY_LATER too): they are consumed again after it, in order."""
        outcomes: list[Outcome] = []
        waiting: set[tuple[str, int]] = set()
        run: list[_Decoded] = []

        async def flush_run() -> None:
            if run:
                outcomes.extend(await self._process_run(run, waiting))
                run.clear()

        for record in records:
            if (record.topic, record.partition) in waiting:
                await flush_run()
                outcomes.append(Outcome.RETRY_LATER)
                continue
            headers = header_map(record.headers)
            try:
                event = decode(headers, record.value)
                self._check_topic(record.topic, event)
            except InvalidEvent:
                await flush_run()
                outcome = await self.process(record)
                if outcome is Outcome.RETRY_LATER:
                    waiting.add((record.topic, record.partition))
                outcomes.append(outcome)
                continue
            run.append(_Decoded(record, headers, event, self._routes.get(type(event))))
        await flush_run()
        return outcomes

    async def _process_run(
        self, run: Sequence[_Decoded], waiting: set[tuple[str, int]]
    ) -> list[Outcome]:
        """One unit of work for the whole run; on any failure, each record on its own."""
        if len(run) > 1:
            try:
                outcomes = await self._apply_together(run)
            except Exception as error:
                log.info(
                    "batch rolled back; applying its events one by one",
                    events=len(run),
                    error=repr(error),
                )
            else:
                for decoded, outcome in zip(run, outcomes, strict=True):
                    self._count(decoded.record, outcome)
                return outcomes
        outcomes = []
        for decoded in run:
            record = decoded.record
            if (record.topic, record.partition) in waiting:
                outcomes.append(Outcome.RETRY_LATER)
                continue
            outcome = await self.process(record)
            if outcome is Outcome.RETRY_LATER:
                waiting.add((record.topic, record.partition))
            outcomes.append(outcome)
        return outcomes

    async def _apply_together(self, run: Sequence[_Decoded]) -> list[Outcome]:
        """Every event of the run in one unit of work, each inside its own consumer span
        (ended with the commit, which is when its effect happened)."""
        started = time.perf_counter()
        spans: list[Span] = []
        outcomes: list[Outcome] = []
        try:
            async with self._unit_of_work(None) as uow:
                for decoded in run:
                    span = self._consumer_span(decoded.record, decoded.headers)
                    spans.append(span)
                    with trace.use_span(span, end_on_exit=False):
                        outcomes.append(await self._apply_one(uow, decoded))
        except Exception as error:
            for span in spans:
                span.set_status(Status(StatusCode.ERROR, f"rolled back: {error!r}"))
            raise
        finally:
            for span in spans:
                span.end()
        elapsed = time.perf_counter() - started
        for decoded in run:
            self._metrics.handler_seconds.labels(self._service, decoded.event.event_type()).observe(
                elapsed
            )
        return outcomes

    async def _apply_one(self, uow: UnitOfWork, decoded: _Decoded) -> Outcome:
        event, handler = decoded.event, decoded.handler
        if handler is None:
            return Outcome.IGNORED
        with _event_log_context(event), uow.caused_by(_cause_of(event, decoded.headers)):
            return await self._claim_and_handle(uow, decoded.record, event, handler)

    async def _claim_and_handle(
        self, uow: UnitOfWork, record: ConsumedRecord, event: Event, handler: Handler
    ) -> Outcome:
        is_new = await inbox.claim(
            uow.connection,
            event_id=event.event_id,
            event_type=event.event_type(),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        if not is_new:
            log.info("duplicate event skipped")
            return Outcome.DUPLICATE
        await handler(uow, event)
        return Outcome.HANDLED

    def _count(self, record: ConsumedRecord, outcome: Outcome) -> None:
        """Counted once the outcome is final: a batch that rolls back counts nothing."""
        self._metrics.events_consumed.labels(self._service, record.topic, outcome.value).inc()
        if outcome is Outcome.DUPLICATE:
            self._metrics.inbox_duplicates.labels(self._service).inc()

    def _consumer_span(self, record: ConsumedRecord, headers: Mapping[str, str]) -> Span:
        """The record's consumer span, a child of the trace context its headers carry."""
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation": "process",
            "messaging.destination.name": record.topic,
            "messaging.kafka.destination.partition": record.partition,
            "messaging.kafka.message.offset": record.offset,
            **order_span_attributes(headers),
        }
        if record.key is not None:
            attributes[MESSAGE_KEY_ATTRIBUTE] = record.key.decode("utf-8", "replace")
        if event_id := headers.get(HEADER_ID):
            attributes["messaging.message.id"] = event_id
        return self._tracer.start_span(
            f"{record.topic} process",
            context=propagate.extract(dict(headers)),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    async def _process(self, record: ConsumedRecord, headers: Mapping[str, str]) -> Outcome:
        try:
            event = decode(headers, record.value)
            self._check_topic(record.topic, event)
        except InvalidEvent as error:
            return await self._process_invalid(record, headers, error)
        handler = self._routes.get(type(event))
        if handler is None:
            return Outcome.IGNORED

        async def apply(uow: UnitOfWork) -> Outcome:
            return await self._claim_and_handle(uow, record, event, handler)

        with _event_log_context(event):
            return await self._apply(record, apply, _cause_of(event, headers), event.event_type())

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
        try:
            return await self._apply(record, answer, cause, "invalid")
        except _Unanswerable:
            return await self._dead_letter(record, error, attempts=1)

    async def _apply(
        self,
        record: ConsumedRecord,
        work: Callable[[UnitOfWork], Awaitable[Outcome]],
        cause: Cause,
        event_type: str,
    ) -> Outcome:
        """Runs `work` in one unit of work, retrying as the failure deserves."""
        failures = 0
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_worth_retrying),
                wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
                stop=stop_after_delay(self._transient_retry_seconds),
                before_sleep=lambda _state: self._metrics.transient_retries.labels(
                    self._service
                ).inc(),
                reraise=False,
            ):
                with attempt:
                    try:
                        async with self._unit_of_work(cause) as uow:
                            outcome = await work(uow)
                    except _Unanswerable:
                        raise
                    except Exception as error:
                        if is_transient(error):
                            raise
                        failures += 1
                        log.warning("handler failed", attempt=failures, error=repr(error))
                        if failures >= self._max_attempts:
                            return await self._dead_letter(record, error, attempts=failures)
                        raise _RetryPermanent(error) from error
        except RetryError as exhausted:
            log.warning(
                "transient failure outlasted this delivery; it will be redelivered",
                error=repr(exhausted.last_attempt.exception()),
            )
            return Outcome.RETRY_LATER
        self._metrics.handler_seconds.labels(self._service, event_type).observe(
            time.perf_counter() - started
        )
        return outcome

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


def _cause_of(event: Event, headers: Mapping[str, str]) -> Cause:
    return Cause(
        event_id=event.event_id,
        correlation_id=headers.get(HEADER_CORRELATION_ID) or str(event.event_id),
    )


@contextlib.contextmanager
def _event_log_context(event: Event) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(
        order_id=event.subject(), event_id=str(event.event_id), event_type=event.event_type()
    ):
        yield


class _Unanswerable(Exception):
    """The invalid-record handler declined: the record goes to the dead-letter topic."""


def _uuid_or_none(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


class _RetryPermanent(Exception):
    """Marks a non-transient failure that still has tries left (retried by tenacity)."""


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, _RetryPermanent) or is_transient(error)
