"""The ``ingest`` flow: the LAION-fMRI release (docs/release-format.md) into the lake, one Dask task per subject.

1. one task per subject, side by side on the cluster: :func:`laion_lake.ingest.ingest_subject`
   with ``register=False`` writes that subject's store (streamed session by session, resumable)
   but leaves the manifest alone, because the manifest is one JSON document rewritten whole and
   parallel subjects would overwrite each other's entries;
2. one task: :func:`laion_lake.ingest.finalize_ingest` lists the subjects in the manifest and
   rebuilds what spans subjects (the stimulus table, the published splits shipped with laion-lake);
3. with ``verify``, one task per subject: :func:`laion_lake.ingest.verify_release` checks the
   stored values (and the rebuilt repeat counts) against the source, independently of the ingest code.

The source is a local folder every worker can read or a bucket (``s3://BUCKET/PREFIX``): each
subject task streams its own files from there, nothing is copied first.

The same steps as :func:`laion_lake.ingest.ingest_release`, which runs them one after the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task

from flows.checked import checked_flow
from flows.cluster import ClusterSettings, check_reachable, cluster_settings, quiet_logs
from flows.task_runner import api_for_workers, task_runner, transient_only
from laion_lake.ingest.layout import ReleaseLayout
from laion_lake.ingest.release import release_subjects
from laion_lake.ingest.voxels import SCOPES
from laion_lake.scoring.runner import local_dask_reads

# a failed subject task is retried only when its error is transient (storage, network), never on bad data
RETRIES = {"retries": 2, "retry_delay_seconds": 5, "retry_condition_fn": transient_only}


# ingestion imports nibabel (the ``ingest`` extra) only inside the tasks: scoring does not need it
@task(name="ingest-subject", task_run_name="ingest {subject}", **RETRIES)
def ingest_one_subject(
    src: str, lake_url: str, subject: str, storage_options: dict | None, scope: str, overwrite: bool, source_storage_options: dict | None = None
) -> dict[str, Any]:
    from laion_lake.ingest import ingest_subject

    # a retry resumes: sessions already in the incomplete store are skipped
    with local_dask_reads():
        report = ingest_subject(
            src, lake_url, subject, storage_options, scope=scope, overwrite=overwrite, verify=False, register=False,
            source_storage_options=source_storage_options,
        )  # fmt: skip
    return report.to_dict()


@task(name="finalize-ingest", **RETRIES)
def finalize(lake_url: str, storage_options: dict | None, subjects: list[str], splits_dir: str | None) -> dict[str, Any]:
    from laion_lake.ingest import finalize_ingest

    with local_dask_reads():
        return finalize_ingest(lake_url, storage_options, subjects=subjects, splits_dir=splits_dir)


@task(name="verify-subject", task_run_name="verify {subject}")
def verify_one_subject(src: str, lake_url: str, subject: str, storage_options: dict | None, source_storage_options: dict | None = None) -> list[str]:
    from laion_lake.ingest import verify_release

    # lake reads inside a task use a local thread pool: through the cluster they would deadlock it
    with local_dask_reads():
        return verify_release(src, lake_url, storage_options, subjects=[subject], source_storage_options=source_storage_options)


@flow(name="laion-lake-ingest-subjects")
def _ingest_on_cluster(
    src: str, lake_url: str, subjects: list[str], storage_options: dict | None, scope: str, overwrite: bool, source_storage_options: dict | None = None
) -> dict[str, Any]:
    runs = [ingest_one_subject.submit(src, lake_url, s, storage_options, scope, overwrite, source_storage_options) for s in subjects]
    return {subject: run.result() for subject, run in zip(subjects, runs)}


@flow(name="laion-lake-verify-subjects")
def _verify_on_cluster(
    src: str, lake_url: str, subjects: list[str], storage_options: dict | None, source_storage_options: dict | None = None
) -> dict[str, list[str]]:
    runs = [verify_one_subject.submit(src, lake_url, s, storage_options, source_storage_options) for s in subjects]
    return {subject: run.result() for subject, run in zip(subjects, runs)}


@checked_flow("laion-lake-ingest", flow_run_name="ingest {src} into {lake_url}")
def ingest_flow(
    src: str,
    lake_url: str,
    subjects: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    scope: Literal[SCOPES] = "rois",  # type: ignore[valid-type]  # ("rois", "brain"), from the one table
    overwrite: bool = False,
    verify: bool = False,
    cluster: ClusterSettings | None = None,
    splits_dir: str | None = None,
    source_storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Ingest a LAION-fMRI release into the lake, one Dask task per subject.

    The release's subjects, the cluster settings and the absence of credentials in both storage
    options are checked in the flow's process before any cluster starts: a bad input is one line.

    Args:
        src: Release root holding derivatives/ (docs/release-format.md): a local folder every Dask worker can read, or s3://BUCKET/PREFIX.
        lake_url: The lake: a local path or s3://bucket/prefix; created if absent.
        subjects: Subjects such as sub-01; default every sub-XX folder of the release.
        storage_options: fsspec options of the lake without credentials (e.g. endpoint_url, profile); workers read credentials from their environment.
        scope: rois (the visual ROIs) or brain (every brain-mask voxel).
        overwrite: Rewrite complete subject stores; otherwise they are skipped and interrupted ones resume.
        verify: After ingesting, check the lake against the source independently of the ingest code.
        cluster: Where the subject tasks run; default DASK_SCHEDULER_ADDRESS, else a local cluster.
        splits_dir: Folder of split JSONs (<pool>/<name>.json) to write instead of the published ones shipped with laion-lake.
        source_storage_options: fsspec options of src without credentials, e.g. {"anon": true} for the public bucket.

    Returns:
        ``subjects`` (subject -> its ingest report), ``lake`` (subjects, n_stimuli, pools) and
        ``differences`` (subject -> differences from the source, with ``verify``).
    """
    quiet_logs()
    if "://" not in src:  # workers may run elsewhere: give them an absolute path
        src = str(Path(src).expanduser().resolve())
    settings = cluster_settings(cluster)
    subjects = release_subjects(ReleaseLayout(src, source_storage_options), subjects)
    check_reachable(settings)
    runner = task_runner(settings)
    with api_for_workers():
        reports = _ingest_on_cluster.with_options(task_runner=runner)(
            src, lake_url, subjects, storage_options, scope, overwrite, source_storage_options
        )  # fmt: skip
    summary = finalize(lake_url, storage_options, subjects, splits_dir)
    differences = None
    if verify:
        with api_for_workers():
            differences = _verify_on_cluster.with_options(task_runner=task_runner(settings))(
                src, lake_url, subjects, storage_options, source_storage_options
            )  # fmt: skip
    get_run_logger().info(
        "ingested %d subject(s) into %s: %d stimuli, pools %s%s",
        len(reports), lake_url, summary["n_stimuli"], summary["pools"],
        "" if differences is None else f"; differences from the source: {sum(len(d) for d in differences.values())}",
    )  # fmt: skip
    return {"subjects": reports, "lake": summary, "differences": differences}
