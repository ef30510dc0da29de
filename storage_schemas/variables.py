"""What each variable of the lake means, read from the one table beside this file (``variables.json``).

Every variable name (``betas``, ``nc_12rep``, ``x``, ...) has a ``long_name`` and a ``description``
and, where it has one, CF ``units`` (``"1"`` dimensionless, ``"percent"``). Writers set them on
what they store; readers fill them in for stores written before (a stored attribute wins). Only
attributes change: content checksums hash values, never attributes.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

_TABLE: dict[str, Any] = json.loads(Path(__file__).with_name("variables.json").read_text(encoding="utf-8"))

# variable name -> its attributes (units where it has any, long_name, description)
VARIABLE_ATTRS = MappingProxyType({name: MappingProxyType(dict(attrs)) for name, attrs in _TABLE["variables"].items()})
ATTR_NAMES: tuple[str, ...] = ("units", "long_name", "description")

T = TypeVar("T")


def variable_attrs(name: str) -> dict[str, str]:
    """The attributes of variable ``name`` (empty for a name the table does not know)."""
    return dict(VARIABLE_ATTRS.get(str(name), {}))


def with_variable_attrs(obj: T) -> T:
    """A shallow copy of an xarray Dataset or DataArray whose every variable carries its attributes.

    Attributes already set are kept (a stored or caller's value wins); values are not copied or
    read (lazy arrays stay lazy). A DataArray gets the attributes of its ``name``.
    """
    copy = obj.copy(deep=False)  # type: ignore[attr-defined]
    variables = dict(copy.variables) if hasattr(copy, "data_vars") else {**{n: c.variable for n, c in copy.coords.items()}, copy.name: copy.variable}
    for name, variable in variables.items():
        for key, value in variable_attrs(name).items():
            variable.attrs.setdefault(key, value)
    return copy


__all__ = ["ATTR_NAMES", "VARIABLE_ATTRS", "variable_attrs", "with_variable_attrs"]
