"""Trial tables of a release: one TSV per session (``session``, ``run``, ``beta_index``, ``label``).

``session`` holds the BIDS session label of the folder the file is in (``ses-01``), as the
published release writes it; plain integers (``1``) are accepted too.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from laion_lake.ingest.layout import IngestError, parse_session_label, require_file
from laion_lake.ingest.source import ReleaseFile
from laion_lake.lake.naming import parse_stimulus_id

REQUIRED_COLUMNS = ("session", "run", "beta_index", "label")


@dataclass(frozen=True)
class SessionTrials:
    """One session's trials, sorted by (run, beta_index).

    Attributes
    ----------
    session : int
    path : ReleaseFile
        The TSV it was read from.
    run, beta_index : int arrays of shape (n_trials,)
    label : str array of shape (n_trials,)
        Stimulus id (image file name).
    digest : str
        sha256 of the TSV's bytes (part of the session's fingerprint).
    """

    session: int
    path: ReleaseFile
    run: np.ndarray
    beta_index: np.ndarray
    label: np.ndarray
    digest: str

    def __len__(self) -> int:
        return len(self.label)


def _integer_column(values: np.ndarray, name: str, path: ReleaseFile) -> np.ndarray:
    try:
        as_float = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise IngestError(f"{path}: column {name!r} must hold integers ({error})") from error
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
        bad = np.flatnonzero(~np.isfinite(as_float) | (as_float != np.round(as_float)))
        raise IngestError(f"{path}: column {name!r} must hold integers; row(s) {bad[:5].tolist()} do not")
    return as_float.astype(np.int64)


def _check_session_column(values: np.ndarray, session: int, path: ReleaseFile) -> None:
    """Every row's ``session`` must name the folder's session (``ses-01`` or ``1``); else name the first row at fault."""
    for row, value in enumerate(values.tolist()):
        number = parse_session_label(value)
        if number != session:
            described = "not a session label (expected ses-YY or an integer)" if number is None else "another session"
            raise IngestError(
                f"{path}: row {row + 1} (line {row + 2}): session {value!r} is {described}, but the file is in ses-{session:02d}"
            )


def read_session_trials(path: ReleaseFile, session: int, n_volumes: int, statmap: ReleaseFile) -> SessionTrials:
    """Read and check one session's trial table against its statmap's ``n_volumes``.

    Checks: required columns, integer columns, ``session`` naming the folder's session
    (``ses-YY`` or an integer; the first row that does not is named), ``run >= 1``,
    one row per volume, ``beta_index`` a permutation of ``0 .. n_volumes - 1``, parseable labels.
    """
    import pandas as pd

    require_file(path, "trials table")
    raw = path.read_bytes("trials table")
    try:
        table = pd.read_csv(io.BytesIO(raw), sep="\t", dtype={"label": str, "session": str}, keep_default_na=False)
    except Exception as error:
        raise IngestError(f"{path}: cannot read the trials table ({type(error).__name__}: {error})") from error
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise IngestError(f"{path}: missing column(s) {missing} (has {list(map(str, table.columns))})")
    if len(table) != n_volumes:
        raise IngestError(f"{path}: {len(table)} trial rows but {statmap.name} has {n_volumes} volumes (one volume per trial)")
    _check_session_column(table["session"].to_numpy(), session, path)
    run = _integer_column(table["run"].to_numpy(), "run", path)
    if np.any(run < 1):
        raise IngestError(f"{path}: column 'run' must be >= 1")
    beta_index = _integer_column(table["beta_index"].to_numpy(), "beta_index", path)
    if not np.array_equal(np.sort(beta_index), np.arange(n_volumes)):
        raise IngestError(f"{path}: 'beta_index' must number the {n_volumes} volumes of {statmap.name} once each (0-based)")
    label = np.asarray([str(v).strip() for v in table["label"].to_numpy()])
    for stimulus_id in np.unique(label):
        try:
            parse_stimulus_id(stimulus_id)
        except ValueError as error:
            raise IngestError(f"{path}: {error}") from error
    order = np.lexsort((beta_index, run))
    return SessionTrials(
        session=session,
        path=path,
        run=run[order],
        beta_index=beta_index[order],
        label=label[order],
        digest=hashlib.sha256(raw).hexdigest(),
    )


def repetitions(stimulus_ids: np.ndarray) -> np.ndarray:
    """1-based presentation count of each trial's stimulus, in the order given."""
    seen: dict[str, int] = {}
    counts = np.empty(len(stimulus_ids), dtype=np.int16)
    for i, stimulus_id in enumerate(stimulus_ids.tolist()):
        seen[stimulus_id] = seen.get(stimulus_id, 0) + 1
        counts[i] = seen[stimulus_id]
    return counts


def trial_coordinates(sessions: Sequence[SessionTrials]) -> xr.Dataset:
    """The trial coordinates of a subject (dim ``trial``), sessions in order, each sorted by (run, beta_index)."""
    stimulus_id = np.concatenate([s.label for s in sessions]).astype(str)
    return xr.Dataset(
        {
            "stimulus_id": ("trial", stimulus_id),
            "session": ("trial", np.concatenate([np.full(len(s), s.session) for s in sessions]).astype(np.int16)),
            "run": ("trial", np.concatenate([s.run for s in sessions]).astype(np.int16)),
            "beta_index": ("trial", np.concatenate([s.beta_index for s in sessions]).astype(np.int32)),
            "repetition": ("trial", repetitions(stimulus_id)),
        }
    )
