"""Lower levels and functions the runner tests ship to worker processes.

Workers import them by name (``offline_test_tasks``): the ``worker_tasks`` fixture puts this
folder on ``sys.path`` and ``PYTHONPATH`` before a process pool or cluster starts. Test modules
are not importable there (``--import-mode=importlib``), hence this folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from evoaug import Policy
from evoaug.offline import SyntheticObjectives

__all__ = ["DieOnce", "FailsOn", "Rendezvous", "fail"]


class DieOnce(SyntheticObjectives):
    """Kills its worker process the first time it scores a policy named ``victim``."""

    def __init__(self, marker: str) -> None:
        super().__init__(("accuracy",), noise=0.0)
        self.marker = marker

    def __call__(self, policy: Policy, *, seed: int) -> dict[str, float]:
        if policy.name == "victim" and not Path(self.marker).exists():
            Path(self.marker).write_text("died")
            os._exit(3)
        return super().__call__(policy, seed=seed)


class FailsOn(SyntheticObjectives):
    """Raises (the candidate's own error) when it scores a policy named ``name``."""

    def __init__(self, name: str) -> None:
        super().__init__(("accuracy", "diversity"))
        self.name = name

    def __call__(self, policy: Policy, *, seed: int) -> dict[str, float]:
        if policy.name == self.name:
            raise RuntimeError(f"cannot train {policy.name!r}")
        return super().__call__(policy, seed=seed)


class Rendezvous(SyntheticObjectives):
    """Each call waits until ``parties`` calls have started (files in ``folder``), so the first
    ``parties`` candidates can only finish by running at once, on as many workers.

    Raises TimeoutError after ``timeout`` seconds alone.
    """

    def __init__(self, folder: str, parties: int, timeout: float = 60.0) -> None:
        super().__init__(("accuracy",), noise=0.0)
        self.folder, self.parties, self.timeout = folder, parties, timeout

    def __call__(self, policy: Policy, *, seed: int) -> dict[str, float]:
        folder = Path(self.folder)
        (folder / f"{os.getpid()}-{time.monotonic_ns()}").touch()
        deadline = time.monotonic() + self.timeout
        while len(list(folder.iterdir())) < self.parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {self.parties} candidates ran at once")
            time.sleep(0.02)
        return super().__call__(policy, seed=seed)


def fail(message: str) -> None:
    """Raise ``ValueError(message)`` in the worker."""
    raise ValueError(message)
