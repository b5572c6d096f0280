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
