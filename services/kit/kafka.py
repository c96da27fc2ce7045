"""Kafka clients configured for delivery that neither loses nor reorders: the aiokafka
defaults are acks=1 without idempotence, which can lose or duplicate on a broker hiccup."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.kit.settings import ServiceSettings


def create_producer(settings: ServiceSettings, *, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )
