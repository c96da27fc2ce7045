"""Which consumer groups read a record of a given `ce_type`, as the services' own routers
decide: a service skips, unread, every catalogue type it does not apply, so only the
groups that read a poison record can dead-letter it.

A type no group applies, an unknown type or a record without one is read (and
dead-lettered) by every group consuming its topic. The notification service applies
some types only while a webhook may subscribe to them: until it has first read the
subscriptions (just after a start) it reads them all, after that only those it e-mails
about. Such a group *may* read a record (a dead letter at most once), where the others
*must* (exactly once).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from contracts.catalogue import UnknownEventType, event_class_for
from services.fulfilment import handlers as fulfilment
from services.fulfilment.domain import AutomaticDelays, ShippingPolicy
from services.fulfilment.service import FulfilmentRules
from services.inventory import handlers as inventory
from services.inventory.service import StockPolicy
from services.kit.batch import Router
from services.notification import handlers as notification
from services.notification.service import InternalRecipients
from services.notification.subscribed_types import EMAILED_TYPES, SubscribedTypes
from services.order import handlers as order
from services.order.submissions import IntakePolicy
from services.returns import handlers as returns


@cache
def _routers() -> Mapping[str, Router[Any]]:
    # The routers' arguments shape what a use case does, never which types it applies.
    return {
        "order": order.router(IntakePolicy(deliverable_countries=frozenset())),
        "inventory": inventory.router(StockPolicy(default_low_stock_threshold=5)),
        "fulfilment": fulfilment.router(
            FulfilmentRules(
                ShippingPolicy(currency="EUR", unit_weight_grams=500), AutomaticDelays(0, 0, 0)
            )
        ),
        "returns": returns.router(),
        "notification": notification.router(
            InternalRecipients(purchasing="p@example.com", operations="o@example.com"),
            SubscribedTypes(refresh_seconds=1.0),
        ),
    }


def _known(event_type: str | None) -> bool:
    if event_type is None:
        return False
    try:
        event_class_for(event_type)
    except UnknownEventType:
        return False
    return True


def may_read(group: str, event_type: str | None) -> bool:
    """The group may read a record of this type (applies it now, or at some moment)."""
    return not _known(event_type) or _routers()[group].applies(event_type or "")


def must_read(group: str, event_type: str | None) -> bool:
    """The group reads every record of this type, whenever it comes."""
    if not may_read(group, event_type):
        return False
    return group != "notification" or not _known(event_type) or event_type in EMAILED_TYPES
