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
NARROW_NBSP = "\u202f"
ORDER = "ord_42"
CATALOGUE = TemplateCatalogue()


def contact(locale: str) -> Contact:
    return Contact(
        order_id=ORDER,
        email="ada@example.com",
        name="Ada Lovelace",
        locale=locale,
        channel="webshop",
        external_order_id="WS-1001",
    )


def render(event: Event, locale: str, *, customer: bool = True) -> RenderedMessage:
    template = EMAIL_PLANS[type(event)].template
    chosen = CATALOGUE.locale_for(template, locale)
    variables = template_variables(event, contact(locale) if customer else None, chosen)
    return CATALOGUE.render(template, chosen, variables)


def test_every_template_exists_in_english_and_french() -> None:
    templates = {plan.template for plan in EMAIL_PLANS.values()}
    assert templates == CATALOGUE.names()
    for template in templates:
        assert {"en", "fr"} <= CATALOGUE.locales_of(template), template


def test_order_placed() -> None:
    english = render(samples.order_placed(ORDER), "en")
    assert english.subject == "We have your order WS-1001"
    assert english.body.startswith("Hello Ada Lovelace,\n")
    assert "3 items for a total of €37.33" in english.body
    french = render(samples.order_placed(ORDER), "fr")
    assert french.subject == "Nous avons bien reçu votre commande WS-1001"
    assert french.body.startswith("Bonjour Ada Lovelace,\n")
    assert f"3 articles pour un total de 37,33{NBSP}€" in french.body


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
