"""Salesforce record ids: 15 case-sensitive characters plus a 3-character case-safe suffix.

The first three characters are the object's key prefix (``001`` Account, ``003`` Contact,
...). The suffix encodes, for each 5-character chunk, which characters are upper-case
letters (bit ``i`` for character ``i``), as one of ``A-Z0-5``. The API accepts 15- and
18-character ids and always returns 18.
"""

from __future__ import annotations

import string

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_ID_CHARS = frozenset(_BASE62)


def case_safe_suffix(id15: str) -> str:
    suffix = ""
    for chunk in range(3):
        flags = 0
        for position in range(5):
            char = id15[chunk * 5 + position]
            if "A" <= char <= "Z":
                flags |= 1 << position
        suffix += _SUFFIX_ALPHABET[flags]
    return suffix


def to18(id15: str) -> str:
    return id15 + case_safe_suffix(id15)


def base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return digits.rjust(width, "0")


def make_id(key_prefix: str, sequence: int, pod: str = "5g") -> str:
    """The 18-character id of the ``sequence``-th record with ``key_prefix`` in an org."""
    return to18(key_prefix + pod + base62(sequence, 10))


def normalize(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not an id.

    An 18-character id is read case-insensitively: its suffix says which of the first 15
    characters are upper-case (that is what the suffix is for), so ``001...aaa`` typed in
    any case names the same record.
    """
    if len(value) not in (15, 18) or not set(value) <= _ID_CHARS:
        return None
    if len(value) == 15:
        return to18(value)
    suffix = value[15:].upper()
    if any(char not in _SUFFIX_ALPHABET for char in suffix):
        return None
    restored = ""
    for chunk, flag_char in enumerate(suffix):
        flags = _SUFFIX_ALPHABET.index(flag_char)
        for position in range(5):
            char = value[chunk * 5 + position]
            upper = bool(flags & (1 << position))
            if upper and not char.isalpha():
                return None
            restored += char.upper() if upper else char.lower()
    return restored + suffix
