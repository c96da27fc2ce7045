"""Message templates: `templates/<locale>/<template>.txt.j2`, each a Jinja2 file with a
`subject` block and a `body` block, rendered as plain text (no HTML escaping).

Every template is compiled once, when the catalogue is made: rendering a message runs the
compiled blocks, with no lookup, file check or parse on the way."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from services.notification.domain import choose_locale

TEMPLATES = Path(__file__).parent / "templates"
SUFFIX = ".txt.j2"
_ASCII_WHITESPACE = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True)
class RenderedMessage:
    locale: str
    subject: str
    body: str


class TemplateCatalogue:
    def __init__(self, directory: Path = TEMPLATES) -> None:
        environment = Environment(
            loader=FileSystemLoader(directory),
            autoescape=False,
            # A variable a template names but the context lacks is a bug, not a blank.
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # The files are read once, below: no modification check on every render.
            auto_reload=False,
        )
        self._compiled: dict[tuple[str, str], Template] = {}
        self._locales: dict[str, set[str]] = {}
        for path in directory.glob(f"*/*{SUFFIX}"):
            name, locale = path.name.removesuffix(SUFFIX), path.parent.name
            self._compiled[name, locale] = environment.get_template(f"{locale}/{path.name}")
            self._locales.setdefault(name, set()).add(locale)

    def names(self) -> frozenset[str]:
        return frozenset(self._locales)

    def locales_of(self, template: str) -> frozenset[str]:
        return frozenset(self._locales.get(template, ()))

    def locale_for(self, template: str, locale: str) -> str:
        """The best locale the template exists in (`fr-CA` → `fr` → `en`)."""
        return choose_locale(locale, self._locales.get(template, ()))

    def render(
        self, template: str, locale: str, variables: Mapping[str, object]
    ) -> RenderedMessage:
        """The message in the best locale the template exists in (`fr-CA` → `fr` → `en`)."""
        chosen = self.locale_for(template, locale)
        compiled = self._compiled[template, chosen]
        context = compiled.new_context(dict(variables))
        subject = "".join(compiled.blocks["subject"](context))
        body = "".join(compiled.blocks["body"](context))
        return RenderedMessage(locale=chosen, subject=_one_line(subject), body=body.strip() + "\n")


def _one_line(text: str) -> str:
    # Only ASCII whitespace: the no-break spaces inside amounts must stay.
    return _ASCII_WHITESPACE.sub(" ", text).strip()
