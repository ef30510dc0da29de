"""Pre-flight: check a score request in the calling process, before any Prefect server or Dask cluster.

Every path that scores on a cluster (``laion-lake score``/``batch``, :func:`flows.score.score_flow`,
the deployments, :mod:`laion_lake.dask`) calls :func:`check_score_request` first. It opens the lake
(reading ``lake.json`` and the split table only), resolves feature sets, benchmark identifiers,
subjects and stored splits, and checks the cluster settings, so that one bad input is one line
naming it (with close matches), raised as a :class:`PreflightError` (a ``ValueError``: exit code 2),
in seconds and with nothing started.

It also keeps secrets out of what travels: :func:`public_storage_options` drops credentials from
fsspec options (flow parameters are stored in Prefect's database and shown in its UI); workers read
them from their environment or a named profile instead (see the README, "Credentials").

:func:`is_deterministic` tells a bad-data error (never worth a retry) from a transient one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from laion_lake.errors import LakeError, UnknownNameError, suggest

# fsspec/s3fs/gcsfs/adlfs option names that hold a credential: never a flow parameter, never logged
SECRET_OPTIONS = frozenset({
    "key", "secret", "token", "password", "session_token", "access_key", "secret_key", "account_key",
    "sas_token", "client_secret", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "credentials",
})  # fmt: skip
# environment variables botocore reads, for credentials given as s3fs options
AWS_ENVIRONMENT = {"key": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY", "token": "AWS_SESSION_TOKEN"}


class PreflightError(ValueError):
    """A score request names something that does not exist or is not valid (exit code 2)."""


@dataclass(frozen=True)
class ScoreRequest:
    """A checked score request: everything resolved, nothing started.

    Attributes
    ----------
    lake_url : str
        The lake's URL as the lake reports it.
    storage_options : dict or None
        The fsspec options without credentials (safe to pass as a parameter).
    feature_sets : tuple of (model, layer)
        Sorted, each held by the lake.
    benchmarks : tuple of str
        Benchmark keys, sorted, each of whose subjects and splits the lake holds.
    """

    lake_url: str
    storage_options: dict[str, Any] | None
    feature_sets: tuple[tuple[str, str], ...]
    benchmarks: tuple[str, ...]

    @property
    def feature_set_names(self) -> list[str]:
        """``model/layer`` names: the one spelling of feature sets in parameters and messages."""
        return [f"{m}/{l}" for m, l in self.feature_sets]


def public_storage_options(options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``options`` without credentials (recursively, e.g. inside ``client_kwargs``); None stays None."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise PreflightError(f"storage options must be a JSON object (a dict), not {type(options).__name__}: {options!r}")
    return {k: (public_storage_options(v) if isinstance(v, Mapping) else v) for k, v in options.items() if k.lower() not in SECRET_OPTIONS}


def secret_option_names(options: Mapping[str, Any] | None) -> list[str]:
    """Names of the credential options in ``options`` (recursively), sorted."""
    if not options:
        return []
    found = {k for k in options if k.lower() in SECRET_OPTIONS}
    for value in options.values():
        if isinstance(value, Mapping):
            found.update(secret_option_names(value))
    return sorted(found)


def credentials_to_environment(options: Mapping[str, Any] | None, environ: dict[str, str]) -> dict[str, Any] | None:
    """Move s3fs credentials (``key``, ``secret``, ``token``) into ``environ`` (``AWS_*``); return the rest.

    The CLI does this for ``--storage-options`` with credentials: the local cluster's worker
    processes inherit the environment, and nothing secret becomes a flow parameter.
    """
    if options is None:
        return None
    for name, variable in AWS_ENVIRONMENT.items():
        if options.get(name):
            environ[variable] = str(options[name])
    if unsupported := [n for n in secret_option_names(options) if n not in AWS_ENVIRONMENT]:
        raise PreflightError(
            f"--storage-options holds credential(s) {unsupported} that cannot be passed to workers safely; "
            "set them in the workers' environment or use a named profile ({\"profile\": \"NAME\"})"
        )
    return public_storage_options(options)


def require_no_credentials(options: Mapping[str, Any] | None, where: str = "storage_options") -> None:
    """Refuse credentials in flow parameters (they would be stored in Prefect's database)."""
    if names := secret_option_names(options):
        raise PreflightError(
            f"{where} holds credential(s) {names}: flow parameters are stored in Prefect's database, so pass "
            "credentials in the workers' environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), a named "
            "profile ({\"profile\": \"NAME\"}) or AWS_PROFILE instead"
        )


def open_checked(lake_url: str, storage_options: Mapping[str, Any] | None) -> Any:
    """Open the lake; any failure (no lake, no credentials, endpoint down) is one line naming the URL."""
    from laion_lake.lake import open_lake

    if not isinstance(lake_url, str) or not lake_url:
        raise PreflightError(f"the lake URL must be a non-empty str, not {lake_url!r}")
    try:
        lake = open_lake(lake_url, None if storage_options is None else dict(storage_options))
        lake.manifest  # noqa: B018 - reads lake.json: a missing lake or bad credentials fail here
    except (LakeError, ValueError) as error:
        raise PreflightError(str(error).splitlines()[0]) from None
    except Exception as error:  # botocore's NoCredentialsError, a refused connection, ...
        raise PreflightError(f"cannot open the lake {lake_url}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    return lake


def resolve_feature_sets(lake: Any, names: Iterable[str | Sequence[str]] | None) -> tuple[tuple[str, str], ...]:
    """``model``, ``model/layer`` or ``(model, layer)`` names -> the lake's (model, layer) pairs.

    None means every feature set of the lake; a name matching nothing is an :class:`UnknownNameError`
    listing the close matches.
    """
    available = [tuple(fs) for fs in lake.feature_sets]
    if not available:
        raise PreflightError(f"the lake {lake.url} holds no feature sets; add some with `laion-lake features add`")
    if names is None:
        return tuple(sorted(available))
    full = {f"{m}/{l}": (m, l) for m, l in available}
    models = {m for m, _ in available}
    chosen: set[tuple[str, str]] = set()
    for name in names:
        if isinstance(name, str):
            text = name
        elif isinstance(name, Sequence) and len(name) == 2 and all(isinstance(n, str) for n in name):
            text = f"{name[0]}/{name[1]}"
        else:
            raise PreflightError(f"a feature set is 'model/layer' (or a model name), not {name!r}")
        if text in full:
            chosen.add(full[text])
        elif text in models:
            chosen.update(fs for fs in available if fs[0] == text)
        else:
            raise UnknownNameError("feature set", text, [*full, *sorted(models)], where=lake.url)
    if not chosen:
        raise PreflightError(f"no feature set selected in {lake.url}; the lake holds {sorted(full)}")
    return tuple(sorted(chosen))


def resolve_benchmarks(lake: Any, benchmarks: Iterable[str] | None) -> tuple[str, ...]:
    """Benchmark identifiers or keys -> keys, each checked against the lake's subjects and splits."""
    from laion_lake.benchmarks import list_benchmarks, load_benchmark

    if isinstance(benchmarks, str):
        benchmarks = [benchmarks]
    specs = [load_benchmark(b) for b in (list_benchmarks() if benchmarks is None else list(benchmarks))]
    if not specs:
        raise PreflightError("no benchmark selected; pass identifiers (see `laion_lake.list_benchmarks()`)")
    subjects = set(lake.subjects)
    split_names: dict[str, set[str]] = {}
    for spec in specs:
        for subject in spec.subjects:
            if subject not in subjects:
                raise PreflightError(f"benchmark {spec.key} needs subject {subject!r}, which {lake.url} lacks{suggest(subject, subjects)}")
            pool = spec.pool_for(subject)
            if spec.kind == "rdm":
                continue
            if pool not in split_names:
                split_names[pool] = set(lake.split_names(pool)) if pool in lake.pools else set()
            for split in spec.folds:
                if split not in split_names[pool]:
                    raise PreflightError(f"benchmark {spec.key} needs split {split!r} of pool {pool!r}, which {lake.url} lacks{suggest(split, split_names[pool])}")
    return tuple(sorted({spec.key for spec in specs}))


def check_score_request(
    lake_url: str,
    storage_options: Mapping[str, Any] | None = None,
    feature_sets: Iterable[str | Sequence[str]] | None = None,
    benchmarks: Iterable[str] | None = None,
) -> ScoreRequest:
    """Check everything a score run needs, here and now; see the module docstring.

    Raises
    ------
    PreflightError, UnknownNameError, UnknownBenchmarkError
        ``ValueError`` subclasses with a one-line message naming what is wrong.
    """
    import dask

    public = public_storage_options(storage_options)
    # the lake's tables are read here with local threads, whatever Dask client this process may hold
    with dask.config.set(scheduler="threads"):
        lake = open_checked(lake_url, storage_options)
        return ScoreRequest(lake.url if "://" in lake_url else lake_url, public, resolve_feature_sets(lake, feature_sets), resolve_benchmarks(lake, benchmarks))


def parse_memory_limit(value: str | int | float | None) -> int | None:
    """``"4GiB"``, ``"2.5 GB"``, a byte count or None (no limit) -> bytes; anything else a PreflightError."""
    from dask.utils import parse_bytes

    if value is None or value == "auto":
        return None
    try:
        parsed = parse_bytes(value)
    except (ValueError, TypeError, KeyError) as error:
        raise PreflightError(f"memory limit {value!r} is not a size like '4GiB' or '2 GB' ({error})") from None
    if parsed <= 0:
        raise PreflightError(f"memory limit {value!r} must be positive")
    return parsed


def check_workers(n: Any, what: str = "workers") -> int:
    """A worker (or thread) count: an int >= 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PreflightError(f"{what} must be a whole number >= 1, not {n!r}")
    return n


def is_deterministic(error: BaseException) -> bool:
    """True for errors that a retry would only repeat: bad data or bad input, not a lost worker.

    The library's :class:`~laion_lake.errors.LakeError` and ``ValueError`` subclasses (unknown
    names, schema problems, non-finite data), plus ``TypeError``/``KeyError``/arithmetic errors;
    network and storage errors (``OSError``, timeouts) and Dask's lost-worker errors are transient.
    """
    if isinstance(error, LakeError):
        return True
    if isinstance(error, (ConnectionError, TimeoutError)):
        return False
    if isinstance(error, OSError):
        return isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError))
    return isinstance(error, (ValueError, TypeError, KeyError, ArithmeticError, AssertionError))
