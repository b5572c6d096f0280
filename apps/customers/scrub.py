"""Replacing a person's identifiers inside free text and JSON (plain Python): audit data, agents' results, API
responses kept for replay. Matching ignores case and, for plates and phone numbers, spaces and dashes, because
that is how people and agents' systems write them."""

import re
from collections.abc import Iterable
from typing import Any

ERASED = "[erased]"
_SEPARATORS = r"[\s\-./]*"


def pattern(*, words: Iterable[str] = (), compact: Iterable[str] = ()) -> re.Pattern | None:
    """One regex finding any of them (each at least 3 characters): `words` (names, email addresses) with any
    whitespace between their words; `compact` (plates, phone numbers) with or without spaces, dashes or dots
    between any two characters."""
    parts = {}
    for needle in words:
        if len(needle.strip()) >= 3:
            parts[needle.strip()] = r"\s+".join(re.escape(word) for word in needle.split())
    for needle in compact:
        chars = re.sub(r"[\s\-./]", "", needle)
        if len(chars) >= 3:
            parts[chars] = _SEPARATORS.join(re.escape(ch) for ch in chars)
    ordered = [parts[k] for k in sorted(parts, key=len, reverse=True)]
    return re.compile("|".join(ordered), re.IGNORECASE) if ordered else None


def scrub(value: Any, found: re.Pattern | None) -> Any:
    """`value` (a string or JSON-like data) with every match replaced by ERASED, keys too."""
    if found is None:
        return value
    if isinstance(value, str):
        return found.sub(ERASED, value)
    if isinstance(value, list):
        return [scrub(v, found) for v in value]
    if isinstance(value, dict):
        return {scrub(k, found): scrub(v, found) for k, v in value.items()}
    return value


def mentions(value: Any, found: re.Pattern | None) -> bool:
    return found is not None and scrub(value, found) != value
