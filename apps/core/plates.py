"""Number plates: normal form and look-alike key (device-protocol.md section 3). Plain Python, no Django."""

import re

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_LOOKALIKE = str.maketrans({"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "B": "8", "S": "5", "Z": "2", "G": "6"})


def normalise(raw: str) -> str:
    """`ab-12 cde` -> `AB12CDE`: upper case, only A-Z and 0-9 kept."""
    return _NOT_ALNUM.sub("", raw.upper())


def lookalike_key(plate: str) -> str:
    """Each character mapped to its class: {O,0,D,Q}->0, {I,1,L}->1, {B,8}->8, {S,5}->5, {Z,2}->2, {G,6}->6."""
    return normalise(plate).translate(_LOOKALIKE)


def normal_candidates(candidates: list | None) -> tuple[tuple[str, float], ...]:
    """A read's candidates as sent (`[{"plate", "score"}]`) as (normal form, score); a candidate without a numeric
    score is never usable (-1)."""
    out = []
    for candidate in candidates or ():
        plate, score = (candidate.get("plate"), candidate.get("score")) if isinstance(candidate, dict) else (None, None)
        if isinstance(plate, str) and normalise(plate):
            usable = isinstance(score, int | float) and not isinstance(score, bool)
            out.append((normalise(plate)[:32], float(score) if usable else -1.0))
    return tuple(out)
