"""Import a NetCDF assembly as Brain-Score packages LAION-fMRI into the lake.

The file holds one DataArray (presentation x neuroid, maybe a size-1 ``time_bin``) with
presentation coordinates ``stimulus_id``, ``session``, ``run``, ``beta_index``, ``repetition`` and
neuroid coordinates ``subject_id``, ``region``, ``roi``, ``voxel_index_in_brain_mask``,
``nc_4rep``, ``nc_12rep``, ``nc_allrep`` (optional: ``ncsnr``, ``x``, ``y``, ``z``). Several subjects
may share one file: each subject's part is its neuroids and the presentations where they hold
any value (a block-diagonal file has NaN elsewhere). Derived on import: ``ncsnr`` from
``nc_12rep`` (k = 1/12), ``neuroid_id`` = ``<subject>.<voxel_index_in_brain_mask>``, ``x/y/z`` = 0
when absent (noted in the store's ``ingest`` attribute); voxels sorted by region, trials by
(session, run, beta_index). Betas are stored as given (already z-scored), NaN -> 0.

As Brain-Score publishes it (``brainscore_vision/data/laion_fmri/data_packaging``: the
per-subject ``persubject_sub-XX`` assemblies), the file is NetCDF4/HDF5 with one variable ``data``,
``presentation``/``neuroid`` index coordinates (a range, or none at all when brainio wrote a
reset MultiIndex), ``session`` as the BIDS label (``ses-01``; integers are accepted too) and
``repetition`` counted from 0. The lake's ``repetition`` is counted from 1 in trial order, as
ingest writes it, so it is renumbered from the data. The shared-pool files
(``shared_sub-XX``) drop ``session``/``run``/``beta_index`` and cannot be imported.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.ingest.catalog import finalize_ingest
from laion_lake.ingest.layout import IngestError, parse_session_label
from laion_lake.ingest.release import IngestReport, SubjectReport
from laion_lake.ingest.trials import repetitions
from laion_lake.ingest.transform import clean_noise_ceiling, ncsnr_from_nc_12rep
from laion_lake.ingest.voxels import REGION_ORDER
from laion_lake.lake import create_lake

PRESENTATION_COORDS = ("stimulus_id", "session", "run", "beta_index", "repetition")
NEUROID_COORDS = ("subject_id", "region", "voxel_index_in_brain_mask", "nc_4rep", "nc_12rep", "nc_allrep")
UNKNOWN_REGION_CHOICES = ("error", "other")


def _engine(path: Path) -> str:
    """The xarray backend able to read ``path``: scipy for NetCDF3, h5netcdf or netCDF4 for NetCDF4."""
    with open(path, "rb") as handle:
        magic = handle.read(8)
    if magic.startswith(b"CDF"):
        return "scipy"
    if magic.startswith(b"\x89HDF"):
        for engine, module in (("h5netcdf", "h5netcdf"), ("netcdf4", "netCDF4")):
            if importlib.util.find_spec(module) is not None:
                return engine
        raise IngestError(f"{path}: a NetCDF4 (HDF5) file; reading it needs h5netcdf or netCDF4 (pip install h5netcdf)")
    raise IngestError(f"{path}: not a NetCDF file (starts with {magic!r})")


def read_assembly(path: str | Path) -> xr.DataArray:
    """The file's one DataArray, loaded, dims (presentation, neuroid); errors name the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    engine = _engine(path)
    try:
        with xr.open_dataset(path, engine=engine) as ds:
            ds = ds.load()
    except Exception as error:
        raise IngestError(f"{path}: cannot read as NetCDF ({type(error).__name__}: {error})") from error
    candidates = [name for name, var in ds.data_vars.items() if {"presentation", "neuroid"} <= set(var.dims)]
    if len(candidates) != 1:
        raise IngestError(f"{path}: expected one variable with dims (presentation, neuroid), found {candidates or list(ds.data_vars)}")
    data = ds[candidates[0]]
    extra = [d for d in data.dims if d not in ("presentation", "neuroid")]
    for dim in extra:
        if data.sizes[dim] != 1:
            raise IngestError(f"{path}: dimension {dim!r} has size {data.sizes[dim]}; only presentation x neuroid is supported")
    data = data.isel({d: 0 for d in extra}, drop=True).transpose("presentation", "neuroid")
    # coordinates of the dataset that are not attached to the variable (scipy round trips) come along
    for name, var in ds.variables.items():
        if name not in data.coords and name != candidates[0] and set(var.dims) <= {"presentation", "neuroid"} and var.dims:
            data = data.assign_coords({name: var})
    missing = [c for c in PRESENTATION_COORDS if c not in data.coords or data[c].dims != ("presentation",)]
    missing += [c for c in NEUROID_COORDS if c not in data.coords or data[c].dims != ("neuroid",)]
    if missing:
        raise IngestError(f"{path}: missing coordinate(s) {missing}")
    return data


def normalize_subject(value: Any, path: Path) -> str:
    """``sub-XX`` from ``sub-01``, ``sub01``, ``01`` or ``1``."""
    text = str(value.item() if hasattr(value, "item") else value).strip()
    match = re.fullmatch(r"(?:sub-?)?(\d+)", text)
    if not match:
        raise IngestError(f"{path}: subject_id {text!r} is not a subject (expected sub-XX)")
    return f"sub-{int(match[1]):02d}"


def session_numbers(values: np.ndarray, path: Path, subject: str) -> np.ndarray:
    """Session numbers from ``ses-01`` labels or integers; the first presentation that is neither is named."""
    values = np.asarray(values).tolist()
    numbers = [parse_session_label(v) for v in values]
    bad = [k for k, n in enumerate(numbers) if n is None]
    if bad:
        raise IngestError(f"{path}: {subject} presentation {bad[0]}: session {str(values[bad[0]])!r} is not a session label (expected ses-YY or an integer)")
    return np.asarray(numbers, dtype=np.int16)


def subject_assembly(data: xr.DataArray, subject_values: np.ndarray, subject: str, path: Path, unknown_region: str) -> tuple[xr.Dataset, list[str]]:
    """One subject's assembly (subject_assembly schema) from the file's DataArray."""
    notes = []
    part = data.isel(neuroid=np.flatnonzero(subject_values == subject))
    values = np.asarray(part.values, dtype=np.float32)
    present = ~np.all(np.isnan(values), axis=1)
    if not present.all():
        notes.append(f"{int((~present).sum())} presentation(s) without a value for {subject} dropped (another subject's)")
        part, values = part.isel(presentation=np.flatnonzero(present)), values[present]
    if np.isnan(values).any():
        notes.append(f"{int(np.isnan(values).sum())} NaN beta(s) set to 0")
        values = np.nan_to_num(values, nan=0.0)

    region = np.asarray(part["region"].values).astype(str)
    unknown = sorted(set(region) - set(REGION_ORDER))
    if unknown:
        if unknown_region == "error":
            raise IngestError(f"{path}: {subject} has voxels in region(s) {unknown}, not one of {list(REGION_ORDER)} (import with unknown_region='other' to keep them as 'other')")
        notes.append(f"region(s) {unknown} stored as 'other'")
        region = np.where(np.isin(region, unknown), "other", region)
    roi = np.asarray(part["roi"].values).astype(str) if "roi" in part.coords else region.copy()
    voxel_index = np.asarray(part["voxel_index_in_brain_mask"].values).astype(np.int64)
    if len(np.unique(voxel_index)) != len(voxel_index):
        raise IngestError(f"{path}: {subject} has duplicate voxel_index_in_brain_mask values")
    neuroid_order = np.lexsort((voxel_index, [REGION_ORDER.index(r) for r in region]))
    session = session_numbers(part["session"].values, path, subject)
    trial_order = np.lexsort((np.asarray(part["beta_index"].values), np.asarray(part["run"].values), session))
    stimulus_id = np.asarray(part["stimulus_id"].values).astype(str)[trial_order]
    repetition = repetitions(stimulus_id)
    given = np.asarray(part["repetition"].values).astype(np.int64)[trial_order]
    if not np.array_equal(given, repetition):
        counted_from = " (the file's counts from 0)" if np.array_equal(given + 1, repetition) else ""
        notes.append(f"repetition renumbered from 1 in trial order{counted_from}")

    coords: dict[str, Any] = {
        "stimulus_id": ("trial", stimulus_id),
        "session": ("trial", session[trial_order]),
        "run": ("trial", np.asarray(part["run"].values).astype(np.int16)[trial_order]),
        "beta_index": ("trial", np.asarray(part["beta_index"].values).astype(np.int32)[trial_order]),
        "repetition": ("trial", repetition),
        "neuroid_id": ("neuroid", np.array([f"{subject}.{i}" for i in voxel_index[neuroid_order].tolist()])),
        "region": ("neuroid", region[neuroid_order]),
        "roi": ("neuroid", roi[neuroid_order]),
        "voxel_index_in_brain_mask": ("neuroid", voxel_index[neuroid_order]),
    }
    for name in ("nc_4rep", "nc_12rep", "nc_allrep"):
        nc, changed = clean_noise_ceiling(np.asarray(part[name].values)[neuroid_order])
        if changed:
            notes.append(f"{name}: {changed} value(s) non-finite or outside [0, 100], set to 0 or clipped")
        coords[name] = ("neuroid", nc)
    if "ncsnr" in part.coords:
        coords["ncsnr"] = ("neuroid", np.asarray(part["ncsnr"].values).astype(np.float32)[neuroid_order])
    else:
        ncsnr, infinite = ncsnr_from_nc_12rep(coords["nc_12rep"][1])
        coords["ncsnr"] = ("neuroid", ncsnr)
        notes.append("ncsnr derived from nc_12rep (k = 1/12)" + (f"; {infinite} infinite stored as float32 max" if infinite else ""))
    if all(c in part.coords for c in "xyz"):
        for c in "xyz":
            coords[c] = ("neuroid", np.asarray(part[c].values).astype(np.int16)[neuroid_order])
    else:
        for c in "xyz":
            coords[c] = ("neuroid", np.zeros(len(voxel_index), np.int16))
        notes.append("x, y, z unknown (no coordinates in the file): stored as 0")
    betas = values[np.ix_(trial_order, neuroid_order)]
    ds = xr.Dataset({"betas": (("trial", "neuroid"), betas)}, coords=coords)
    _, first = np.unique(ds["region"].values, return_index=True)
    ds.attrs = {
        "subject": subject,
        "regions": [str(ds["region"].values[i]) for i in sorted(first)],
        "ingest": {"source": str(path), "format": "brainscore-netcdf", "notes": notes},
    }
    return ds, notes


def import_brainscore_assembly(
    path: str | Path,
    lake_url: str,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    unknown_region: str = "error",
    splits_dir: str | Path | None = None,
) -> IngestReport:
    """Import a Brain-Score NetCDF assembly (see the module doc) into the lake, one store per subject.

    Parameters
    ----------
    path : str or Path
        The ``.nc`` file: NetCDF4/HDF5 (read with h5netcdf, the ``ingest`` extra) or NetCDF3 (scipy).
    lake_url, storage_options
        The lake (created if absent).
    overwrite : bool
        Replace subjects already in the lake (else :class:`~laion_lake.errors.StoreExistsError`).
    unknown_region : {"error", "other"}
        What to do with voxels whose region is none of V1, V2, V3, V4, IT, other.
    splits_dir : path, optional
        Split JSONs to write after the stimulus table is rebuilt instead of the published ones
        shipped with laion-lake (the default).
    """
    if unknown_region not in UNKNOWN_REGION_CHOICES:
        raise ValueError(f"unknown_region must be one of {UNKNOWN_REGION_CHOICES}, not {unknown_region!r}")
    path = Path(path).expanduser()
    data = read_assembly(path)
    subject_values = np.array([normalize_subject(v, path) for v in np.asarray(data["subject_id"].values).tolist()])
    lake = create_lake(lake_url, storage_options)
    report = IngestReport(lake.url)
    # build every subject first: a bad file fails before anything is written
    assemblies = {s: subject_assembly(data, subject_values, s, path, unknown_region) for s in sorted(set(subject_values))}
    for subject, (ds, notes) in assemblies.items():
        lake.write_subject(subject, ds, overwrite=overwrite)
        sizes = {str(r): int((ds["region"].values == r).sum()) for r in ds.attrs["regions"]}
        report.subjects[subject] = SubjectReport(subject, "imported", n_trials=int(ds.sizes["trial"]), regions=sizes, notes=notes)
    tables = finalize_ingest(lake_url, storage_options, subjects=list(assemblies), splits_dir=splits_dir)
    report.n_stimuli, report.pools, report.notes = tables["n_stimuli"], tables["pools"], tables["notes"]
    return report
