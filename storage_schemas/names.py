"""The one naming rule: model, layer, subject, pool and split names as storage path components.

Every name the lake stores under (feature set groups, manifest keys, score record keys) goes
through :func:`escape_component`: characters outside :data:`SAFE_CHARACTERS` become ``%XX``
(uppercase hex of their UTF-8 bytes, ``%`` included), and a leading ``.`` becomes ``%2E``, so a
component is never empty, ``.``, ``..`` or hidden, never holds ``/`` or :data:`KEY_JOINER`, and
:func:`unescape_component` gives the name back. The rule is injective: ``resnet/50`` + ``fc`` and
``resnet`` + ``50/fc`` are different keys. Names are bounded (:data:`MAX_ESCAPED_LENGTH`).
"""

from __future__ import annotations

from urllib.parse import unquote

SAFE_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.+=@,")
# separator of the parts of a key (model/layer/subject/pool/split); escaped inside a part
KEY_SEPARATOR = "/"
# separator of the parts of a flat group name (features/<model>~<layer>); escaped inside a part
KEY_JOINER = "~"
# longest escaped component (object stores and file systems cap path components near 255 bytes)
MAX_ESCAPED_LENGTH = 200
RULE = (
    f"names must be non-empty text of at most {MAX_ESCAPED_LENGTH} characters once escaped "
    f"(characters outside A-Z a-z 0-9 {''.join(sorted(SAFE_CHARACTERS - set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789')))} "
    "count 3 per UTF-8 byte, e.g. '/' -> '%2F', a leading '.' -> '%2E')"
)


class InvalidNameError(ValueError):
    """A name the naming rule cannot store; the message states the rule."""


def escape_component(name: str, kind: str = "name") -> str:
    """``name`` as one storage path component (see the module docstring).

    Raises
    ------
    InvalidNameError
        Empty, not text, not encodable as UTF-8 (a lone surrogate), or too long escaped.
    """
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"invalid {kind} {name!r}: {RULE}")
    try:
        encoded = ["".join(f"%{b:02X}" for b in c.encode("utf-8")) if c not in SAFE_CHARACTERS else c for c in name]
    except UnicodeEncodeError:
        raise InvalidNameError(f"invalid {kind} {name!r} (not encodable as UTF-8): {RULE}") from None
    escaped = "".join(encoded)
    if escaped.startswith("."):
        escaped = "%2E" + escaped[1:]
    if len(escaped) > MAX_ESCAPED_LENGTH:
        raise InvalidNameError(f"invalid {kind} {name[:40]!r}... ({len(escaped)} characters escaped): {RULE}")
    return escaped


def unescape_component(component: str) -> str:
    """Inverse of :func:`escape_component`; a component it could not have produced is an error."""
    name = unquote(component, errors="strict")
    if not name or escape_component(name) != component:
        raise InvalidNameError(f"{component!r} is not an escaped name: {RULE}")
    return name


def join_key(*names: str, separator: str = KEY_SEPARATOR) -> str:
    """Escaped names joined by ``separator`` (``/`` for keys, ``~`` for flat group names)."""
    return separator.join(escape_component(name) for name in names)


def split_key(key: str, separator: str = KEY_SEPARATOR) -> list[str]:
    """Inverse of :func:`join_key`."""
    return [unescape_component(part) for part in key.split(separator)]


__all__ = [
    "InvalidNameError",
    "KEY_JOINER",
    "KEY_SEPARATOR",
    "MAX_ESCAPED_LENGTH",
    "RULE",
    "SAFE_CHARACTERS",
    "escape_component",
    "join_key",
    "split_key",
    "unescape_component",
]
