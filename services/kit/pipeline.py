"""What happens to each consumed record, in one place:

decode → (invalid: dead letter) → route by event type → one unit of work that records the
event id in the inbox and applies the handler's effect → the caller commits the offset.

Transient failures are retried with backoff, then handed back for redelivery (never
dead-lettered, never skipped). Other failures are tried a few times, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum

import structlog
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


class EventPipeline:
    def __init__(
        self,
        *,
        service: str,
        unit_of_work: Callable[[Cause], UnitOfWork],
        routes: Routes,
        dead_letters: DeadLetterPublisher,
        metrics: Metrics,
        max_attempts: int = 3,
        transient_retry_seconds: float = 20.0,
        invalid_record_handler: InvalidRecordHandler | None = None,
        topic_names: TopicNames | None = None,
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

    async def process(self, record: ConsumedRecord) -> Outcome:
        outcome = await self._process(record)
        self._metrics.events_consumed.labels(self._service, record.topic, outcome.value).inc()
        return outcome

    async def _process(self, record: ConsumedRecord) -> Outcome:
        headers = header_map(record.headers)
        try:
            event = decode(headers, record.value)
            self._check_topic(record.topic, event)
        except InvalidEvent as error:
            return await self._process_invalid(record, headers, error)
        handler = self._routes.get(type(event))
        if handler is None:
            return Outcome.IGNORED
        cause = Cause(
            event_id=event.event_id,
            correlation_id=headers.get(HEADER_CORRELATION_ID) or str(event.event_id),
        )

        async def apply(uow: UnitOfWork) -> Outcome:
            is_new = await inbox.claim(
                uow.connection,
                event_id=event.event_id,
                event_type=event.event_type(),
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            if not is_new:
                self._metrics.inbox_duplicates.labels(self._service).inc()
                log.info("duplicate event skipped")
                return Outcome.DUPLICATE
            await handler(uow, event)
            return Outcome.HANDLED

        with structlog.contextvars.bound_contextvars(
            order_id=event.subject(), event_id=str(event.event_id), event_type=event.event_type()
        ):
            return await self._apply(record, apply, cause, event.event_type())

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
                self._metrics.inbox_duplicates.labels(self._service).inc()
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
