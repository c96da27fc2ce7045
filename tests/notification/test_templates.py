"""Every e-mail in English and French, filled from the event that prompts it."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from contracts.base import Event
from services.notification.domain import Contact
from services.notification.messages import EMAIL_PLANS, template_variables
from services.notification.templates import RenderedMessage, TemplateCatalogue
from tests.notification import samples

NBSP = "\u00a0"
TIMES = "\u00d7"
NARROW_NBSP = "\u202f"
ORDER = "ord_42"
CATALOGUE = TemplateCatalogue()


def contact(locale: str, name: str | None = "Ada Lovelace") -> Contact:
    return Contact(
        order_id=ORDER,
        email="ada@example.com",
        name=name,
        locale=locale,
        channel="webshop",
        external_order_id="WS-1001",
    )


def render(
    event: Event, locale: str, *, customer: bool = True, name: str | None = "Ada Lovelace"
) -> RenderedMessage:
    template = EMAIL_PLANS[type(event)].template
    chosen = CATALOGUE.locale_for(template, locale)
    variables = template_variables(event, contact(locale, name) if customer else None, chosen)
    return CATALOGUE.render(template, chosen, variables)


def test_every_template_exists_in_english_and_french() -> None:
    templates = {plan.template for plan in EMAIL_PLANS.values()}
    assert templates == CATALOGUE.names()
    for template in templates:
        assert {"en", "fr"} <= CATALOGUE.locales_of(template), template


def test_order_of_the_first_contract_version_reads_as_before_with_its_lines() -> None:
    english = render(samples.order_placed(ORDER), "en")
    assert english.subject == "We have your order WS-1001"
    assert english.body.startswith("Hello Ada Lovelace,\n")
    assert "3 items for a total of €37.33" in english.body
    assert (
        f"- MUG-01: 2 {TIMES} €12.50 = €25.00\n"
        f"- TEA-02: 1 {TIMES} €7.34 = €7.34\n"
        "\n"
        "Subtotal: €32.34\n"
        "Shipping: €4.99\n"
        "Total: €37.33\n"
    ) in english.body
    assert "We will write again as soon as it ships." in english.body
    french = render(samples.order_placed(ORDER), "fr")
    assert french.subject == "Nous avons bien reçu votre commande WS-1001"
    assert french.body.startswith("Bonjour Ada Lovelace,\n")
    assert f"3 articles pour un total de 37,33{NBSP}€" in french.body
    assert f"Livraison : 4,99{NBSP}€\nTotal : 37,33{NBSP}€\n" in french.body
    for body in (english.body, french.body):
        assert not any(word in body for word in ("iscount", "emise", "Tax", "incl.", "dont"))


def test_order_with_discounts_and_tax_in_its_prices_in_english() -> None:
    english = render(samples.discounted_order(ORDER, taxes_included=True), "en")
    assert english.body == (
        "Hello Ada Lovelace,\n"
        "\n"
        "Thank you for your order WS-1001: 3 items for a total of €49.11.\n"
        "\n"
        f"- Oak chair: 2 {TIMES} €25.00 = €50.00\n"
        "    Loyal customer: -€5.00\n"
        "    SPRING10: -€4.50\n"
        "    After discounts: €40.50\n"
        f"- TEA-02: 1 {TIMES} €7.34 = €7.34\n"
        "    SPRING10: -€0.73\n"
        "    After discounts: €6.61\n"
        "\n"
        "Discounts applied:\n"
        "- Loyal customer: -€5.00\n"
        "- SPRING10: -€5.23\n"
        "- Free shipping over €40: -€4.99\n"
        "\n"
        "Subtotal: €47.11\n"
        "Shipping (Standard): free\n"
        "Tip: €2.00\n"
        "Total: €49.11 (incl. VAT €7.85)\n"
        "\n"
        "Delivery to:\n"
        "Ada Lovelace\n"
        "12 rue de la Paix\n"
        "75002 PARIS\n"
        "France\n"
        "\n"
        "We will write again as soon as it ships.\n"
        "\n"
        "Customer service\n"
    )


def test_order_with_discounts_and_tax_in_its_prices_in_french() -> None:
    french = render(samples.discounted_order(ORDER, taxes_included=True), "fr")
    assert french.body == (
        "Bonjour Ada Lovelace,\n"
        "\n"
        f"Merci pour votre commande WS-1001 : 3 articles pour un total de 49,11{NBSP}€.\n"
        "\n"
        f"- Oak chair : 2 {TIMES} 25,00{NBSP}€ = 50,00{NBSP}€\n"
        f"    Loyal customer : -5,00{NBSP}€\n"
        f"    SPRING10 : -4,50{NBSP}€\n"
        f"    Après remises : 40,50{NBSP}€\n"
        f"- TEA-02 : 1 {TIMES} 7,34{NBSP}€ = 7,34{NBSP}€\n"
        f"    SPRING10 : -0,73{NBSP}€\n"
        f"    Après remises : 6,61{NBSP}€\n"
        "\n"
        "Remises appliquées :\n"
        f"- Loyal customer : -5,00{NBSP}€\n"
        f"- SPRING10 : -5,23{NBSP}€\n"
        f"- Free shipping over €40 : -4,99{NBSP}€\n"
        "\n"
        f"Sous-total : 47,11{NBSP}€\n"
        "Livraison (Standard) : offerte\n"
        f"Tip : 2,00{NBSP}€\n"
        f"Total : 49,11{NBSP}€ (dont VAT 7,85{NBSP}€)\n"
        "\n"
        "Livraison à :\n"
        "Ada Lovelace\n"
        "12 rue de la Paix\n"
        "75002 PARIS\n"
        "France\n"
        "\n"
        "Nous vous écrirons dès qu'elle sera expédiée.\n"
        "\n"
        "Le service client\n"
    )


def test_tax_added_to_the_prices_is_a_line_before_the_total() -> None:
    order = samples.discounted_order(ORDER, taxes_included=False)
    english = render(order, "en")
    assert "Tip: €2.00\nTax: €9.42\nTotal: €58.53\n" in english.body
    assert "incl." not in english.body
    french = render(order, "fr")
    assert f"Tip : 2,00{NBSP}€\nTaxes : 9,42{NBSP}€\nTotal : 58,53{NBSP}€\n" in french.body
    assert "dont" not in french.body


def test_taxes_of_different_names_are_told_as_tax() -> None:
    order = samples.discounted_order(ORDER, taxes_included=True)
    tea = order.lines[1]
    reduced = tea.model_copy(
        update={"tax_lines": (tea.tax_lines[0].model_copy(update={"title": "Reduced VAT"}),)}
    )
    mixed = order.model_copy(update={"lines": (order.lines[0], reduced)})
    assert "Total: €49.11 (incl. tax €7.85)\n" in render(mixed, "en").body
    assert f"Total : 49,11{NBSP}€ (dont taxes 7,85{NBSP}€)\n" in render(mixed, "fr").body


def test_yen_order_to_hong_kong() -> None:
    english = render(samples.yen_order(ORDER), "en")
    assert "3 items for a total of ¥4,600." in english.body
    assert (
        f"- Matcha 30 g: 3 {TIMES} ¥1,500 = ¥4,500\n"
        "    WELCOME: -¥500\n"
        "    After discounts: ¥4,000\n"
    ) in english.body
    assert (
        "Subtotal: ¥4,000\nShipping (EMS): ¥600\nTotal: ¥4,600 (incl. Consumption tax ¥419)\n"
    ) in english.body
    # Hong Kong has no postcodes, and this address no city: no blank line or stray comma.
    assert (
        "Delivery to:\nChan Tai Man\nFlat 5, 12 Nathan Road\nKOWLOON\nHong Kong SAR China\n\n"
    ) in english.body
    french = render(samples.yen_order(ORDER), "fr")
    yen = f"{NBSP}JPY"
    assert (
        f"Livraison (EMS) : 600{yen}\n"
        f"Total : 4{NARROW_NBSP}600{yen} (dont Consumption tax 419{yen})\n"
    ) in french.body
    assert (
        "Livraison à :\n"
        "Chan Tai Man\n"
        "Flat 5, 12 Nathan Road\n"
        "KOWLOON\n"
        "R.A.S. chinoise de Hong Kong\n"
        "\n"
    ) in french.body


def test_an_order_collected_at_the_warehouse_has_no_delivery_address() -> None:
    english = render(samples.point_of_sale_order(ORDER), "en", name=None)
    assert english.body.startswith("Hello,\n")
    assert "Subtotal: €32.34\nTotal: €32.34\n\nCollect at the warehouse: " in english.body
    assert "Delivery to" not in english.body and "Shipping" not in english.body
    french = render(samples.point_of_sale_order(ORDER), "fr", name=None)
    assert french.body.startswith("Bonjour,\n")
    assert f"Total : 32,34{NBSP}€\n\nRetrait à l'entrepôt : " in french.body
    assert "Livraison" not in french.body


def test_order_cancelled() -> None:
    english = render(samples.order_cancelled(ORDER), "en")
    assert english.subject == "Your order WS-1001 has been cancelled"
    assert "cancelled because some items are out of stock" in english.body
    french = render(samples.order_cancelled(ORDER), "fr")
    assert french.subject == "Votre commande WS-1001 a été annulée"
    assert "annulée car certains articles sont en rupture de stock" in french.body


def test_shipped_names_carrier_and_tracking_number() -> None:
    english = render(samples.shipped(ORDER), "en")
    assert english.subject == "Your order WS-1001 is on its way"
    assert "left our warehouse on 22 November 2026" in english.body
    assert "Carrier: colissimo\nTracking number: 6A12345678901\n" in english.body
    french = render(samples.shipped(ORDER), "fr")
    assert french.subject == "Votre commande WS-1001 est en route"
    assert "a quitté notre entrepôt le 22 novembre 2026" in french.body
    assert "Transporteur : colissimo\nNuméro de suivi : 6A12345678901\n" in french.body


def test_delivered() -> None:
    english = render(samples.delivered(ORDER), "en")
    assert english.subject == "Your order WS-1001 has been delivered"
    assert "parcel 6A12345678901 for order WS-1001 on 24 November 2026" in english.body
    french = render(samples.delivered(ORDER), "fr")
    assert french.subject == "Votre commande WS-1001 a été livrée"
    assert "colis 6A12345678901 de la commande WS-1001 le 24 novembre 2026" in french.body


def test_return_approved_gives_the_label_reference() -> None:
    english = render(samples.return_approved(ORDER), "en")
    assert english.subject == "Your return rma_77 is approved"
    assert "with the return label RL-55821" in english.body
    french = render(samples.return_approved(ORDER), "fr")
    assert french.subject == "Votre retour rma_77 est accepté"
    assert "avec l'étiquette de retour RL-55821" in french.body


def test_return_rejected_explains_each_reason() -> None:
    english = render(samples.return_rejected(ORDER), "en")
    assert english.subject == "We cannot accept your return rma_78"
    assert "\n- the return period is over\n" in english.body
    french = render(samples.return_rejected(ORDER), "fr")
    assert french.subject == "Nous ne pouvons pas accepter votre retour rma_78"
    assert "\n- le délai de retour est dépassé\n" in french.body


def test_refund_amount_is_formatted_for_the_language() -> None:
    english = render(samples.refund_issued(ORDER, amount_minor=123456), "en")
    assert english.subject == "Your refund of €1,234.56 is on its way"
    assert "We refunded €1,234.56 for your return rma_77 (order WS-1001)" in english.body
    french = render(samples.refund_issued(ORDER, amount_minor=123456), "fr")
    amount = f"1{NARROW_NBSP}234,56{NBSP}€"
    assert french.subject == f"Votre remboursement de {amount} est en cours"
    assert f"Nous avons remboursé {amount} pour votre retour rma_77" in french.body


def test_refund_breaks_down_goods_tax_and_shipping() -> None:
    english = render(samples.refund_with_breakdown(ORDER), "en")
    assert english.subject == "Your refund of €25.24 is on its way"
    assert (
        "We refunded €25.24 for your return rma_79 (order WS-1001).\n"
        "\n"
        f"- CHAIR-OAK {TIMES} 1: €20.25\n"
        "\n"
        "Goods (before tax): €16.87\n"
        "Tax: €4.21\n"
        "Shipping (before tax): €4.16\n"
        "Total refunded: €25.24\n"
        "\n"
        "It may take a few days"
    ) in english.body
    french = render(samples.refund_with_breakdown(ORDER), "fr")
    assert (
        f"- CHAIR-OAK {TIMES} 1 : 20,25{NBSP}€\n"
        "\n"
        f"Articles (hors taxes) : 16,87{NBSP}€\n"
        f"Taxes : 4,21{NBSP}€\n"
        f"Livraison (hors taxes) : 4,16{NBSP}€\n"
        f"Total remboursé : 25,24{NBSP}€\n"
        "\n"
        "Il peut falloir"
    ) in french.body


def test_refund_without_a_breakdown_reads_as_before() -> None:
    english = render(samples.refund_issued(ORDER, amount_minor=1234), "en")
    assert english.body == (
        "Hello Ada Lovelace,\n"
        "\n"
        "We refunded €12.34 for your return rma_77 (order WS-1001).\n"
        "It may take a few days to appear on your statement.\n"
        "\n"
        "Customer service\n"
    )


def test_a_customer_without_a_name_is_greeted_without_one() -> None:
    for event in (samples.shipped(ORDER), samples.refund_issued(ORDER), samples.delivered(ORDER)):
        assert render(event, "en", name=None).body.startswith("Hello,\n")
        assert render(event, "fr", name=None).body.startswith("Bonjour,\n")


def test_low_stock_alert() -> None:
    english = render(samples.low_stock("MUG-01"), "en", customer=False)
    assert english.subject == "Low stock: MUG-01 at wh-paris-1"
    assert "down to 3 available units (reorder threshold: 5)" in english.body
    french = render(samples.low_stock("MUG-01"), "fr", customer=False)
    assert french.subject == "Stock bas : MUG-01 à wh-paris-1"
    assert "descendu à 3 unités disponibles (seuil de réapprovisionnement : 5)" in french.body


def test_stock_reservation_failed_alert_lists_shortages() -> None:
    english = render(samples.stock_reservation_failed(ORDER), "en", customer=False)
    assert english.subject == f"Stock reservation failed for order {ORDER}"
    assert "- MUG-01: 2 requested, 0 available\n" in english.body
    french = render(samples.stock_reservation_failed(ORDER), "fr", customer=False)
    assert french.subject == f"Échec de la réservation de stock pour la commande {ORDER}"
    assert "- MUG-01 : 2 demandé(s), 0 disponible(s)\n" in french.body


def test_canadian_french_reads_french_and_unknown_languages_read_english() -> None:
    canadian = render(samples.shipped(ORDER), "fr-CA")
    assert canadian.locale == "fr"
    assert canadian.subject == "Votre commande WS-1001 est en route"
    german = render(samples.refund_issued(ORDER, amount_minor=1234), "de")
    assert german.locale == "en"
    assert german.subject == "Your refund of €12.34 is on its way"


def test_a_regional_template_wins_over_its_language(tmp_path: Path) -> None:
    for locale, greeting in (("en", "Hello"), ("fr", "Bonjour"), ("fr-CA", "Allô")):
        (tmp_path / locale).mkdir()
        (tmp_path / locale / "hello.txt.j2").write_text(
            f"{{% block subject %}}{greeting}{{% endblock %}}"
            f"{{% block body %}}{greeting} {{{{ name }}}} & co{{% endblock %}}"
        )
    catalogue = TemplateCatalogue(tmp_path)
    assert catalogue.render("hello", "fr-CA", {"name": "Ada"}).subject == "Allô"
    assert catalogue.render("hello", "fr-BE", {"name": "Ada"}).subject == "Bonjour"
    # Plain text: nothing is HTML-escaped.
    assert catalogue.render("hello", "en", {"name": "<Ada>"}).body == "Hello <Ada> & co\n"


def test_a_variable_missing_from_the_context_is_an_error() -> None:
    with pytest.raises(jinja2.UndefinedError):
        CATALOGUE.render("order_shipped", "en", {"customer_name": "Ada"})
