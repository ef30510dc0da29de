"""Flows whose parameters are checked before Prefect creates (and stores) a flow run."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from prefect import Flow

from laion_lake.preflight import require_no_credentials


# the parameters that hold fsspec options: the lake's, and an ingest source's
CREDENTIAL_FREE = ("storage_options", "source_storage_options")


class CheckedFlow(Flow):
    """A flow that refuses credentials in its storage options (``CREDENTIAL_FREE``) before a flow run exists.

    Prefect stores a flow run's parameters in its database when it creates the run, before the flow
    body (and its pre-flight) runs, so a direct ``score_flow(..., storage_options={"secret": ...})``
    call is checked here first. A deployment run's parameters are stored by whoever creates the run;
    the body checks them again.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Flow.__call__'s own keywords (return_state, wait_for) are not the flow's parameters
        own = {k: v for k, v in kwargs.items() if k not in ("return_state", "wait_for")}
        bound = inspect.signature(self.fn).bind_partial(*args, **own)
        for name in CREDENTIAL_FREE:
            require_no_credentials(bound.arguments.get(name), where=name)
        return super().__call__(*args, **kwargs)


def checked_flow(name: str, flow_run_name: str | Callable[[], str] | None = None) -> Callable[[Callable[..., Any]], CheckedFlow]:
    """``@flow(name=..., flow_run_name=...)`` for flows whose parameters may carry storage options."""
    return lambda fn: CheckedFlow(fn, name=name, flow_run_name=flow_run_name)


def scoring_run_name() -> str:
    """A score or batch run's name in the Prefect UI, from its parameters: what it scores, where.

    E.g. ``late_model/fc6 x 2 benchmarks in ./lake`` (Prefect's default is a random name).
    """
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    sets = parameters.get("feature_sets") or parameters.get("models")
    what = ", ".join(sets) if sets else "every feature set"
    if len(what) > 60:
        what = f"{len(sets)} feature sets"
    benchmarks = parameters.get("benchmarks")
    on = f"{len(benchmarks)} benchmark{'s' if len(benchmarks) != 1 else ''}" if benchmarks else "the leaderboard"
    return f"{what} x {on} in {parameters.get('lake_url')}"
