"""The pure numerical core: kernels, kernel ridge with LOO/GCV, correlations, RDMs, noise ceilings,
bootstrap. Arrays in, arrays out; numpy and scipy only (no fsspec, zarr, dask, xarray or prefect).
"""

from laion_lake.compute.bootstrap import DEFAULT_N_DRAWS, BootstrapResult, bootstrap_mean_error
from laion_lake.compute.ceiling import (
    MEAN_INVERSE_REPEATS_4REP,
    MEAN_INVERSE_REPEATS_12REP,
    brainscore_ceiled_score,
    brainscore_ceiling,
    convert_noise_ceiling,
    estimate_ncsnr_from_repeats,
    mean_inverse_repeats,
    ncsnr_from_noise_ceiling,
    noise_ceiling_for_design,
    noise_ceiling_from_ncsnr,
    nsd_ceiled_score,
    nsd_noise_ceiling_for_test_design,
    rdm_ceiled_score,
    rdm_ceiling,
)
from laion_lake.compute.correlation import (
    pearson_r_per_column,
    representational_dissimilarity_matrix,
    spearman_r,
    spearman_rdm_similarity,
    upper_triangle,
)
from laion_lake.compute.kernel import DEFAULT_FEATURE_CHUNK_SIZE, compute_centered_linear_kernels
from laion_lake.compute.ridge import (
    DEFAULT_ALPHAS,
    CenteredKernelEigendecomposition,
    KernelRidgeCVResult,
    eigendecompose_centered_kernel,
    kernel_ridge_cv_predict,
    kernel_ridge_predict,
    solve_kernel_ridge_cv_eigen,
    solve_kernel_ridge_eigen,
)

__all__ = [
    "BootstrapResult",
    "CenteredKernelEigendecomposition",
    "DEFAULT_ALPHAS",
    "DEFAULT_FEATURE_CHUNK_SIZE",
    "DEFAULT_N_DRAWS",
    "KernelRidgeCVResult",
    "MEAN_INVERSE_REPEATS_12REP",
    "MEAN_INVERSE_REPEATS_4REP",
    "bootstrap_mean_error",
    "brainscore_ceiled_score",
    "brainscore_ceiling",
    "compute_centered_linear_kernels",
    "convert_noise_ceiling",
    "eigendecompose_centered_kernel",
    "estimate_ncsnr_from_repeats",
    "kernel_ridge_cv_predict",
    "kernel_ridge_predict",
    "mean_inverse_repeats",
    "ncsnr_from_noise_ceiling",
    "noise_ceiling_for_design",
    "noise_ceiling_from_ncsnr",
    "nsd_ceiled_score",
    "nsd_noise_ceiling_for_test_design",
    "pearson_r_per_column",
    "rdm_ceiled_score",
    "rdm_ceiling",
    "representational_dissimilarity_matrix",
    "solve_kernel_ridge_cv_eigen",
    "solve_kernel_ridge_eigen",
    "spearman_r",
    "spearman_rdm_similarity",
    "upper_triangle",
]
