"""What the lake's readers add for a notebook user: each variable's attributes and indexes on the ids.

Attributes (``units``, ``long_name``, ``description``) come from ``storage_schemas/variables.json``
and are filled in on read, so a lake written before they were stored shows them too. Indexes:
``stimulus_id`` (along ``trial``) and ``neuroid_id`` (along ``neuroid``) get an xarray index, so
``ds.sel(stimulus_id="img.jpg")`` picks an image's trials and ``ds.sel(neuroid_id="sub-01.123")``
one voxel. No variable is added (an index sits on the existing coordinate), so a store's content
checksum over the returned dataset is unchanged.
"""

from __future__ import annotations

from typing import TypeVar

import xarray as xr

from storage_schemas.variables import with_variable_attrs

T = TypeVar("T", xr.Dataset, xr.DataArray)

# id coordinate -> the dimension it labels, where it is not the dimension coordinate itself
ID_COORDS = {"stimulus_id": "trial", "neuroid_id": "neuroid"}


def with_id_indexes(obj: T) -> T:
    """``obj`` with an index on each id coordinate of :data:`ID_COORDS` it has and has no index on.

    An id repeated along its dimension (a stimulus shown on several trials) is allowed: selecting
    it with a scalar gives every row that carries it.
    """
    for name, dim in ID_COORDS.items():
        if name in obj.coords and obj[name].dims == (dim,) and name not in obj.xindexes:
            obj = obj.set_xindex(name)
    return obj


def annotated(obj: T) -> T:
    """``obj`` with every variable's attributes (stored ones win) and the id indexes."""
    return with_id_indexes(with_variable_attrs(obj))


__all__ = ["ID_COORDS", "annotated", "with_id_indexes"]
