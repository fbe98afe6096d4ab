"""The dramatiq broker: Redis when configured, else an in-process one (embedded default)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    CurrentMessage,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from actors.settings import Settings

QUEUE = "importer"


def make_broker(settings: Settings) -> dramatiq.Broker:
    """A broker with bounded, quick retries (the log, not the broker, is what guarantees progress)."""
    middleware: list[Middleware] = [
        AgeLimit(),
        TimeLimit(time_limit=3_600_000),
        ShutdownNotifications(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.retry_min_backoff_ms,
            max_backoff=settings.retry_max_backoff_ms,
        ),
        CurrentMessage(),
    ]
    broker: dramatiq.Broker
    if settings.redis_url:
        # Imported only when used: redis costs ~7 MB in every embedded process that never needs it.
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.redis_url, namespace=settings.redis_namespace, middleware=middleware
        )
    else:
        broker = StubBroker(middleware=middleware)
    broker.declare_queue(QUEUE)
    return broker
