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


def checked_flow(name: str) -> Callable[[Callable[..., Any]], CheckedFlow]:
    """``@flow(name=...)`` for flows whose parameters may carry storage options."""
    return lambda fn: CheckedFlow(fn, name=name)
