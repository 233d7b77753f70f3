"""The cluster runners: Ray tasks and Dask futures, on a local instance or a running cluster.

Both are optional extras (``pip install 'evoaug[ray]'``, ``'evoaug[dask]'``), imported when a
runner is made, with a message naming what to install when missing. A cluster address is
checked to answer before anything is submitted (:func:`check_address`).
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError
from evoaug.offline._runner import Runner

__all__ = ["DaskRunner", "RayRunner", "check_address"]


def check_address(address: str, *, timeout: float, default_port: int, what: str) -> None:
    """Fail fast, with a clear message, when nothing answers at a cluster address.

    Accepts ``host:port`` and ``scheme://host:port`` (``ray://``, ``tcp://``, ...). A TCP
    connection is opened and closed; nothing is sent.

    Raises:
        ConfigError: The address cannot be parsed, or nothing accepted a connection within
            ``timeout`` seconds.

    Example:
        >>> check_address("127.0.0.1:1", timeout=1.0, default_port=6379, what="Ray")
        Traceback (most recent call last):
        ...
        evoaug.exceptions.ConfigError: `address` '127.0.0.1:1': no Ray cluster answered ...

    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError as err:
        raise ConfigError(f"`address` must look like host:port, got {address!r}") from err
    if not host:
        raise ConfigError(f"`address` must look like host:port, got {address!r}")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise ConfigError(
            f"`address` {address!r}: no {what} cluster answered at {host}:{port} within "
            f"{timeout:g} s ({err}). Start the cluster first (see docs/offline-search.md), "
            "check the host and port, or leave `--address` out for a local cluster"
        ) from err


def _missing_extra(extra: str, err: ImportError) -> ConfigError:
    return ConfigError(
        f"`--runner {extra}` needs the optional dependency {extra!r}: "
        f"pip install 'evoaug[{extra}]' ({err})"
    )


class RayRunner(Runner):
    """Ray tasks, on a local Ray instance or a running cluster (``pip install 'evoaug[ray]'``).

    Each task asks for ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs, so Ray places one
    candidate per device; Ray's own task retries are off (the dispatcher re-queues).

    Args:
        address: ``None``: start a local Ray instance with ``workers`` CPUs; ``"auto"``: the
            cluster this machine belongs to; ``host:port`` or ``ray://host:port``: that one
            (checked to answer within ``connect_timeout`` seconds first).
        workers: Tasks in flight at once.
        cpus_per_task: CPUs Ray reserves per candidate.
        gpus_per_task: GPUs Ray reserves per candidate.
        connect_timeout: Seconds to wait for the address to answer.

    Raises:
        ConfigError: Ray is not installed, or the address does not answer.

    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int = 2,
        cpus_per_task: float = 1.0,
        gpus_per_task: float = 0.0,
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            ray = importlib.import_module("ray")
        except ImportError as err:
            raise _missing_extra("ray", err) from err
        self.workers = check_int("workers", workers, low=1)
        if address is not None and address != "auto":
            check_address(address, timeout=connect_timeout, default_port=6379, what="Ray")
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            kwargs: dict[str, Any] = {"address": address, "log_to_driver": False}
            if address is None:
                kwargs.update(num_cpus=self.workers, include_dashboard=False)
            ray.init(**kwargs)
        self._refs: dict[cf.Future[Any], Any] = {}
        self._remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)(
            _call
        )

    @property
    def slots(self) -> int:
        """Tasks in flight at once."""
        return self.workers

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Submit a Ray task; its ``ObjectRef.future()``."""
        ref = self._remote.remote(fn, *args)
        future: cf.Future[Any] = ref.future()
        self._refs[future] = ref  # the task lives as long as its ObjectRef
        future.add_done_callback(lambda f: self._refs.pop(f, None))
        return future

    def close(self) -> None:
        """Disconnect (and stop the local instance this runner started)."""
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


class DaskRunner(Runner):
    """Dask futures, on a local cluster or a running scheduler (``pip install 'evoaug[dask]'``).

    Args:
        address: ``None``: start a ``LocalCluster`` of ``workers`` single-threaded processes;
            ``tcp://host:8786`` (or ``host:port``): a running scheduler, checked to answer
            within ``connect_timeout`` seconds first.
        workers: Tasks in flight at once.
        connect_timeout: Seconds to wait for the scheduler.

    Raises:
        ConfigError: dask.distributed is not installed, or the scheduler does not answer.

    """

    name = "dask"

    def __init__(
        self, address: str | None = None, *, workers: int = 2, connect_timeout: float = 10.0
    ) -> None:
        try:
            distributed = importlib.import_module("distributed")
        except ImportError as err:
            raise _missing_extra("dask", err) from err
        self.workers = check_int("workers", workers, low=1)
        self._pending: dict[cf.Future[Any], Any] = {}
        self._cluster: Any = None
        if address is None:
            self._cluster = distributed.LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # The scheduler's HTTP server: any free port, not 8787 (taken by a dashboard
                # or a second local cluster, which would warn and, in tests, fail).
                scheduler_kwargs={"dashboard_address": ":0"},
            )
            target: Any = self._cluster
        else:
            check_address(address, timeout=connect_timeout, default_port=8786, what="Dask")
            target = address
        try:
            self._client = distributed.Client(target, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError) as err:
            self.close()
            raise ConfigError(
                f"`address` {address!r}: could not connect to the Dask scheduler ({err})"
            ) from err

    @property
    def slots(self) -> int:
        """Tasks in flight at once."""
        return self.workers

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Submit to the scheduler; a ``concurrent.futures`` view of the Dask future."""
        out: cf.Future[Any] = cf.Future()
        dask_future = self._client.submit(_call, fn, *args, pure=False, retries=0)
        self._pending[out] = dask_future  # Dask cancels a task whose future is dropped

        def done(f: Any) -> None:
            try:
                out.set_result(f.result())
            except BaseException as err:  # KilledWorker, CancelledError, ...
                out.set_exception(err)
            finally:
                self._pending.pop(out, None)

        dask_future.add_done_callback(done)
        return out

    def close(self) -> None:
        """Close the client (and the local cluster this runner started)."""
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)
