"""Which pytest run this process belongs to, and its name among the run's workers."""

import uuid
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class RunIdentity:
    """The pytest run this process belongs to, and its name among the run's workers."""

    run: str
    worker: str = "main"

    @classmethod
    def of(cls, config: pytest.Config | None = None) -> "RunIdentity":
        """xdist workers of one run share its id; any other process starts a run of its own.

        Read from the worker's own config, not from PYTEST_XDIST_* variables: a pytest
        started by a test inherits those, and must not join the run that started it.
        """
        workerinput = getattr(config, "workerinput", None)
        if workerinput is None:
            return cls(run=uuid.uuid4().hex[:12])
        return cls(run=str(workerinput["testrunuid"])[:12], worker=str(workerinput["workerid"]))
