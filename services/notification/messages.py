"""Which events are told by e-mail, to whom, and what their templates are given."""

from __future__ import annotations

from collections.abc import Mapping

from contracts.base import Event
from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.inventory import LowStockDetected, StockReservationFailed
from contracts.events.order import OrderCancelled, OrderPlaced
from contracts.events.returns import RefundIssued, ReturnApproved, ReturnRejected
from services.notification.domain import Audience, Contact, EmailPlan, format_date
from services.notification.summaries import order_summary, refund_summary

EMAIL_PLANS: Mapping[type[Event], EmailPlan] = {
    OrderPlaced: EmailPlan("order_placed", Audience.CUSTOMER),
    OrderCancelled: EmailPlan("order_cancelled", Audience.CUSTOMER),
    Shipped: EmailPlan("order_shipped", Audience.CUSTOMER),
    Delivered: EmailPlan("order_delivered", Audience.CUSTOMER),
    ReturnApproved: EmailPlan("return_approved", Audience.CUSTOMER),
    ReturnRejected: EmailPlan("return_rejected", Audience.CUSTOMER),
    RefundIssued: EmailPlan("refund_issued", Audience.CUSTOMER),
    LowStockDetected: EmailPlan("low_stock", Audience.PURCHASING),
    StockReservationFailed: EmailPlan("stock_reservation_failed", Audience.OPERATIONS),
}


def template_variables(event: Event, contact: Contact | None, locale: str) -> dict[str, object]:
    """What the event's template is given. Customer templates also get the customer's name
    (None when the channel did not give one) and the order's reference as the customer
    knows it (the channel's order id)."""
    variables: dict[str, object] = {}
    if contact is not None:
        variables["customer_name"] = contact.name
        variables["order_reference"] = contact.external_order_id
    match event:
        case OrderPlaced():
            summary = order_summary(event, locale)
            variables["total"] = summary.total
            variables["item_count"] = sum(line.quantity for line in event.lines)
            variables["order"] = summary
        case OrderCancelled():
            variables["reason"] = event.reason.value
        case Shipped():
            variables["carrier"] = event.carrier
            variables["tracking_number"] = event.tracking_number
            variables["shipped_on"] = format_date(event.shipped_at.date(), locale)
        case Delivered():
            variables["tracking_number"] = event.tracking_number
            variables["delivered_on"] = format_date(event.delivered_at.date(), locale)
        case ReturnApproved():
            variables["return_id"] = event.return_id
            variables["label_reference"] = event.label_reference
            variables["item_count"] = sum(line.quantity for line in event.lines)
        case ReturnRejected():
            variables["return_id"] = event.return_id
            variables["reasons"] = [reason.code.value for reason in event.reasons]
        case RefundIssued():
            variables["return_id"] = event.return_id
            refund = refund_summary(event, locale)
            variables["amount"] = refund.total
            variables["refund"] = refund
        case LowStockDetected():
            variables["sku"] = event.sku
            variables["warehouse_id"] = event.warehouse_id
            variables["available"] = event.available
            variables["threshold"] = event.threshold
        case StockReservationFailed():
            variables["order_id"] = event.order_id
            variables["shortages"] = [
                {"sku": item.sku, "requested": item.requested, "available": item.available}
                for item in event.shortages
            ]
    return variables
