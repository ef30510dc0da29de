"""Write per-voxel r maps: one NIfTI per subject (its own grid) and a PNG view of each, drawn with nilearn.

Per-voxel r is read from the arrays stored next to the score records (``lake.voxel_scores``);
only when no current record holds them is it recomputed in this process with
:func:`laion_lake.scoring.score` (its ``attrs["voxel_r"]``), and that is said in one line. Voxels that were not scored (below the benchmark's noise-ceiling filter, or
outside its region) are NaN in the volume.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from laion_lake.benchmarks import BenchmarkSpec, load_benchmark
from laion_lake.maps.grid import Grid, place_on_grid, subject_grid
from laion_lake.scoring.plan import escape_key_component


@dataclass(frozen=True)
class SubjectMap:
    """What was written for one subject."""

    subject: str
    nifti: Path
    png: Path | None
    shape: tuple[int, int, int]
    affine: np.ndarray
    grid_source: str
    n_voxels: int
    median: float
    maximum: float


def voxel_r(lake: Any, model: str, layer: str, benchmark: BenchmarkSpec | str, say: Callable[[str], None] | None = None) -> xr.DataArray:
    """Per-voxel r (subject, neuroid) of a regression benchmark: the arrays stored with the score
    records (``lake.voxel_scores``); recomputed here with :func:`score` only when there is no
    current record holding them, which ``say`` (default: stderr) is told in one line."""
    from laion_lake.scoring.api import score

    spec = benchmark if isinstance(benchmark, BenchmarkSpec) else load_benchmark(benchmark)
    if spec.kind != "regression":
        raise ValueError(f"{spec.key}: brain maps need per-voxel r, which only regression benchmarks (ridgecv, ridge) have, not {spec.metric}")
    try:
        return lake.voxel_scores(model, layer, spec)
    except FileNotFoundError as missing:
        (say or _to_stderr)(f"{model}/{layer} on {spec.key}: no stored per-voxel r ({missing}); recomputing in this process")
    return score(lake, model, layer, spec).attrs["voxel_r"]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def subject_table(voxels: xr.DataArray, subject: str) -> pd.DataFrame:
    """One subject's scored voxels of a (subject, neuroid) per-voxel DataArray: neuroid_id, x, y, z, r."""
    row = voxels.sel(subject=subject)
    n = int(row["n_voxels"])
    return pd.DataFrame({name: np.asarray(row[name].values)[:n] for name in ("neuroid_id", "x", "y", "z")} | {"r": row.values[:n]})


def _file_stem(subject: str, model: str, layer: str, spec: BenchmarkSpec, minus: tuple[str, str] | None) -> str:
    parts = [subject, model, layer, spec.key] + (["minus", *minus] if minus else [])
    return "_".join(escape_key_component(p) for p in parts)


def subject_images(lake: Any, subject: str, table: pd.DataFrame, png: bool = True) -> tuple[Any, Any, Grid]:
    """(NIfTI image of ``table["r"]`` at its voxels, background image of every voxel of the subject or None, grid)."""
    import nibabel

    assembly = lake.subject(subject)
    x, y, z = assembly["x"].values, assembly["y"].values, assembly["z"].values
    grid: Grid = subject_grid(assembly.attrs, x, y, z, where=f"subject {subject} of {lake.url}")
    image = nibabel.Nifti1Image(place_on_grid(table["r"].to_numpy(), table["x"], table["y"], table["z"], grid.shape), grid.affine)
    background = None
    if png:
        everywhere = np.nan_to_num(place_on_grid(np.ones(len(x)), x, y, z, grid.shape), nan=0.0)
        background = nibabel.Nifti1Image(everywhere, grid.affine)
    return image, background, grid


def draw_map(image: Any, background: Any, path: Path, title: str, diff: bool = False) -> Path:
    """A PNG of a map: nilearn ``plot_stat_map``, orthogonal slices through the peak voxel."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from nilearn import plotting

    import nibabel

    # unscored voxels are NaN in the file; drawn as empty (0, under the threshold)
    data = np.nan_to_num(np.asarray(image.dataobj, dtype=np.float64), nan=0.0)
    image = nibabel.Nifti1Image(data.astype(np.float32), image.affine)
    peak = np.unravel_index(np.argmax(np.abs(data)), data.shape)
    cut = image.affine[:3, :3] @ np.asarray(peak, dtype=np.float64) + image.affine[:3, 3]
    vmax = float(np.nanmax(np.abs(data))) or 1.0
    display = plotting.plot_stat_map(image, bg_img=background, cut_coords=tuple(cut), display_mode="ortho", colorbar=True,
                                     cmap="RdBu_r" if diff else "cold_hot", vmax=vmax, title=title, draw_cross=False,
                                     black_bg=False, dim=0, threshold=1e-6,
                                     # 0 at the colour bar's centre: on an all-positive map nilearn would
                                     # otherwise spread cold_hot over 0..vmax and draw low positive r blue
                                     symmetric_cbar=True)
    display.savefig(str(path), dpi=110)
    display.close()
    pyplot.close("all")
    return path


def write_maps(
    lake: Any,
    model: str,
    layer: str,
    benchmark: BenchmarkSpec | str,
    out: str | Path,
    diff: str | Sequence[str] | None = None,
    png: bool = True,
) -> list[SubjectMap]:
    """Write ``<subject>_<model>_<layer>_<benchmark>[_minus_<model B>_<layer B>].nii.gz`` (and ``.png``) per subject.

    Parameters
    ----------
    lake : Lake or str
    model, layer : str
        Feature set A.
    benchmark : BenchmarkSpec or identifier
        A regression benchmark (either family spelling).
    out : str or Path
        Folder, created if needed.
    diff : "model/layer" or (model, layer), optional
        Map r of A minus r of B, voxel by voxel.
    png : bool
        Also draw each map (nilearn ``plot_stat_map``, orthogonal slices through the peak voxel).

    Returns
    -------
    list of SubjectMap, one per subject.
    """
    import nibabel

    from laion_lake.scoring.api import _as_lake
    from laion_lake.scoring.compare import _parse_feature_set

    lake = _as_lake(lake)
    spec = benchmark if isinstance(benchmark, BenchmarkSpec) else load_benchmark(benchmark)
    _parse_feature_set(lake, (model, layer))
    minus = _parse_feature_set(lake, diff) if diff is not None else None
    voxels = voxel_r(lake, model, layer, spec)
    others = voxel_r(lake, *minus, spec) if minus else None
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for subject in voxels["subject"].values.tolist():
        table = subject_table(voxels, subject)
        if others is not None:
            other = subject_table(others, subject)
            position = pd.Index(other["neuroid_id"]).get_indexer(table["neuroid_id"])
            table["r"] = table["r"].to_numpy() - other["r"].to_numpy()[position]
        image, background, grid = subject_images(lake, subject, table, png)
        what = f"r({model}/{layer})" + (f" - r({minus[0]}/{minus[1]})" if minus else "")
        image.header["descrip"] = f"{what} {spec.key}"[:79].encode()
        stem = _file_stem(subject, model, layer, spec, minus)
        nifti = folder / f"{stem}.nii.gz"
        nibabel.save(image, str(nifti))
        picture = None
        if png:
            picture = draw_map(image, background, folder / f"{stem}.png", f"{subject} {what}  {spec.key}", diff=minus is not None)
        r = table["r"].to_numpy()
        written.append(SubjectMap(subject, nifti, picture, grid.shape, grid.affine, grid.source, len(r),
                                  float(np.nanmedian(r)), float(np.nanmax(r))))
    return written


__all__ = ["SubjectMap", "draw_map", "subject_images", "subject_table", "voxel_r", "write_maps"]
