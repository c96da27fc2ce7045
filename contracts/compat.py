"""Is a new version of an event's JSON Schema backward compatible with the old one?

Within a major version the rule is: only additive, optional changes. The new schema must
accept every event the old one accepted, so that consumers on the new model still read
old events and producers still on the old model still produce valid events.

Two checks run. A structural comparison names each breaking change in plain words
(removed, retyped, newly required, narrowed enum or bounds, a pattern that no longer
matches everything it matched: greenery compares the two regular languages). jsoncompat
then checks the whole schema as a set of accepted values, and catches what the
structural comparison does not know about; it cannot reason about regular expressions,
which the structural comparison covers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsoncompat
from greenery import Pattern, parse
from greenery.parse import NoMatch

Schema = dict[str, Any]

# Bounds that, when they move this way, accept fewer values.
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every way the new schema rejects events the old one accepted; empty if none."""
    problems = list(_StructuralDiff(old_schema, new_schema).changes())
    if not problems and not _jsoncompat_accepts(old_schema, new_schema):
        problems.append(
            "the new schema rejects some events the old one accepted (found by jsoncompat)"
        )
    return problems


def _jsoncompat_accepts(old_schema: Schema, new_schema: Schema) -> bool:
    # "deserializer": the new schema reads what the old one wrote.
    try:
        return bool(
            jsoncompat.check_compat(json.dumps(old_schema), json.dumps(new_schema), "deserializer")
        )
    except ValueError as error:  # a schema jsoncompat cannot analyse: say so, don't guess
        raise ValueError(f"jsoncompat cannot compare these schemas: {error}") from error


class _StructuralDiff:
    """Walks the old and the new schema side by side, resolving local `$ref`s."""

    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root

    def changes(self) -> Iterator[str]:
        yield from self._compare(self.old_root, self.new_root, "", set())

    def _compare(
        self, old: Schema, new: Schema, path: str, seen: set[tuple[str, str]]
    ) -> Iterator[str]:
        refs = (old.get("$ref", ""), new.get("$ref", ""))
        if refs != ("", ""):
            if refs in seen:  # a recursive schema: this pair is already being compared
                return
            seen = seen | {refs}
        old = _resolve(old, self.old_root)
        new = _resolve(new, self.new_root)
        where = f"property {path!r}" if path else "the event"

        old_nullable, old = _without_null(old, self.old_root)
        new_nullable, new = _without_null(new, self.new_root)
        if old_nullable and not new_nullable:
            yield f"{where} no longer accepts null"

        old_types = _types(old, self.old_root) - {"null"}
        new_types = _types(new, self.new_root) - {"null"}
        if not _types_within(old_types, new_types):
            yield f"{where} changed type from {_show(old_types)} to {_show(new_types)}"
            return  # everything below would only repeat the same change

        old_values, new_values = _allowed_values(old), _allowed_values(new)
        if new_values is not None:
            if old_values is None:
                yield f"{where} is now restricted to {_show_values(new_values)}"
            elif dropped := [value for value in old_values if value not in new_values]:
                yield f"{where}: enum narrowed, no longer allows {_show_values(dropped)}"

        yield from _narrowed_constraints(old, new, where)

        if "object" in old_types:
            yield from self._compare_objects(old, new, path, seen)
        if "array" in old_types and "items" in old and "items" in new:
            yield from self._compare(old["items"], new["items"], f"{path}[]", seen)

    def _compare_objects(
        self, old: Schema, new: Schema, path: str, seen: set[tuple[str, str]]
    ) -> Iterator[str]:
        old_properties: Schema = old.get("properties", {})
        new_properties: Schema = new.get("properties", {})
        for name, old_property in old_properties.items():
            child = f"{path}.{name}" if path else name
            if name not in new_properties:
                yield f"property {child!r} was removed"
            else:
                yield from self._compare(old_property, new_properties[name], child, seen)
        for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
            child = f"{path}.{name}" if path else name
            yield f"property {child!r} is newly required"
        if old.get("additionalProperties", True) is not False and (
            new.get("additionalProperties", True) is False
        ):
            where = f"property {path!r}" if path else "the event"
            yield f"{where} no longer allows unknown properties"


def _resolve(node: Schema, root: Schema) -> Schema:
    while "$ref" in node:
        reference: str = node["$ref"]
        if not reference.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {reference!r}")
        target: Any = root
        for part in reference[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        # Keywords beside a $ref (pydantic puts description and default there) still apply.
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _without_null(node: Schema, root: Schema) -> tuple[bool, Schema]:
    """Splits `anyOf: [X, null]` (pydantic's `X | None`) into (nullable, X)."""
    branches = node.get("anyOf")
    if not isinstance(branches, list):
        return "null" in _types(node, root), node
    others = [branch for branch in branches if _resolve(branch, root).get("type") != "null"]
    nullable = len(others) < len(branches)
    if len(others) == 1:
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return nullable, _resolve({**others[0], **rest}, root)
    return nullable, node


def _types(node: Schema, root: Schema) -> frozenset[str]:
    """The JSON types a schema node admits; `any` when it does not say."""
    node = _resolve(node, root)
    declared = node.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(declared)
    for combinator in ("anyOf", "oneOf"):
        if isinstance(node.get(combinator), list):
            return frozenset().union(*(_types(branch, root) for branch in node[combinator]))
    if "enum" in node or "const" in node:
        values = node.get("enum", [node.get("const")])
        return frozenset(_json_type(value) for value in values)
    return frozenset({"any"})


def _allowed_values(node: Schema) -> list[Any] | None:
    """The fixed values a node allows (`enum`, or `const` as a one-value enum), if any."""
    if "enum" in node:
        return list(node["enum"])
    return [node["const"]] if "const" in node else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types_within(old: frozenset[str], new: frozenset[str]) -> bool:
    if "any" in new:
        return True
    # Every integer is a number, so integer → number widens.
    widened = new | {"integer"} if "number" in new else new
    return old <= widened


def _narrowed_constraints(old: Schema, new: Schema, where: str) -> Iterator[str]:
    for keyword in _LOWER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
            yield _tightened(where, keyword, old, new)
    for keyword in _UPPER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
            yield _tightened(where, keyword, old, new)
    if (
        "pattern" in new
        and new["pattern"] != old.get("pattern")
        and ("pattern" not in old or not pattern_widens(old["pattern"], new["pattern"]))
    ):
        yield f"{where}: pattern changed from {old.get('pattern')!r} to {new['pattern']!r}"
    for keyword in ("format", "multipleOf"):
        if keyword in new and new[keyword] != old.get(keyword):
            yield f"{where}: {keyword} changed from {old.get(keyword)!r} to {new[keyword]!r}"


def pattern_widens(old: str, new: str) -> bool:
    """True when every string the old pattern matches the new one matches too, decided on
    the regular languages themselves (greenery). False whenever it cannot be decided: a
    pattern greenery cannot read, or one not anchored at both ends."""
    try:
        old_language = _language(old)
        new_language = _language(new)
    except (NoMatch, ValueError):
        return False
    return bool(old_language.difference(new_language).empty())


def _language(pattern: str) -> Pattern:
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"{pattern!r} is not anchored at both ends")
    # greenery reads a hyphen at the end of a character class only when escaped.
    return parse(re.sub(r"(?<!\\)-\]", r"\\-]", pattern[1:-1]))


def _tightened(where: str, keyword: str, old: Schema, new: Schema) -> str:
    return f"{where}: {keyword} tightened from {old.get(keyword, 'unbounded')} to {new[keyword]}"


def _show(types: frozenset[str]) -> str:
    return " or ".join(sorted(types))


def _show_values(values: list[Any]) -> str:
    return ", ".join(json.dumps(value) for value in values)
