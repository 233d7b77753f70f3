"""Helpers shared by the bench scripts: machine facts, median timing, reporting into the docs.

Every script in ``bench/`` measures evoaug against its peers in the same process, on the same
inputs, interleaving the repeats so that a slow moment of a shared machine hits every peer alike,
and reports medians. A script that is run with ``--write-docs`` replaces its own section of
``docs/benchmarks.md``, the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``, so that
several scripts can report into one page without touching each other's figures.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import re
import resource
import shlex
import statistics
import sys
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

__all__ = [
    "DOCS_PAGE",
    "REPO_ROOT",
    "CpuShare",
    "command_line",
    "without_output_options",
    "extract_archive",
    "interleaved_rates",
    "machine_info",
    "machine_markdown",
    "markdown_table",
    "median_rate",
    "write_docs_section",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_PAGE = REPO_ROOT / "docs" / "benchmarks.md"

_PACKAGES = ("evoaug", "torch", "torchvision", "albumentations", "opencv-python-headless", "numpy")


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, str]:
    """Facts a reader needs to compare figures: CPU, cores, load, library versions, date.

    Returns:
        An ordered ``{label: value}`` dict of strings. ``cores`` is the number of cores this
        process may run on; ``load average`` is the 1-minute load when the function is called
        (figures taken on a loaded machine are not comparable); ``torch threads`` is torch's
        intra-op thread count at that moment. Packages that are not installed are left out.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(cores),
    }
    if hasattr(os, "getloadavg"):
        info["load average (1 min)"] = f"{os.getloadavg()[0]:.2f}"
    info["python"] = platform.python_version()
    for package in _PACKAGES:
        module = sys.modules.get(package)
        version = getattr(module, "__version__", None) or _version(package)
        if version is not None:
            info[package] = version
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch threads"] = str(torch.get_num_threads())
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    return info


def machine_markdown(info: Mapping[str, str]) -> str:
    """``info`` as one Markdown line: ``key: value; key: value``."""
    return "; ".join(f"{key}: {value}" for key, value in info.items())


def command_line(script: str | Path, argv: Sequence[str]) -> str:
    """The shell command that reproduces a run, relative to the repository root."""
    path = Path(script).resolve()
    with contextlib.suppress(ValueError):  # a script outside the repository keeps its path
        path = path.relative_to(REPO_ROOT)
    return shlex.join([".venv/bin/python", str(path), *argv])


def without_output_options(argv: Sequence[str]) -> list[str]:
    """``argv`` without its output options, ``--write-docs`` and ``--docs PATH``.

    What a script writes into the docs page is the command that reruns the measurement; the
    page it was written to (a test's temporary copy, say) is not part of that.
    """
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg == "--write-docs" or arg.startswith("--docs="):
            skip = False
        elif arg == "--docs":
            skip = True
        else:
            kept.append(arg)
    return kept


class CpuShare:
    """How much CPU other processes took while a block ran (Linux; ``None`` elsewhere).

    Figures taken while other processes compete for the cores are not comparable: torch's
    intra-op threads in particular slow down sharply when a core is taken from them. Use as a
    context manager around the measurements, then read :attr:`foreign`.

    Example:
        >>> with CpuShare() as share:
        ...     _ = sum(range(1000))
        >>> share.foreign is None or 0.0 <= share.foreign <= 1.0
        True
    """

    def __init__(self) -> None:
        self.foreign: float | None = None
        self._start: tuple[float, float, float] | None = None

    @staticmethod
    def _snapshot() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        # user, nice, system, (idle, iowait), irq, softirq, steal
        busy = sum(int(fields[i]) for i in (1, 2, 3, 6, 7, 8)) / ticks
        own = sum(
            r.ru_utime + r.ru_stime
            for r in (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
        )
        return busy, own, time.perf_counter()

    def __enter__(self) -> CpuShare:
        self._start = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._snapshot()
        if self._start is None or end is None:
            return
        busy, own, wall = (b - a for a, b in zip(self._start, end, strict=True))
        capacity = wall * (os.cpu_count() or 1)
        self.foreign = min(max((busy - own) / capacity, 0.0), 1.0) if capacity > 0 else 0.0

    def warning(self, threshold: float = 0.05) -> str:  # 5%: what the scripts tolerate
        """The warning for a report when others took over ``threshold`` of the CPU, else ``""``."""
        if self.foreign is None or self.foreign <= threshold:
            return ""
        return (
            f"Warning: other processes took {self.foreign:.0%} of the CPU time during the "
            "measurements; these figures are not reliable. Rerun on a quiet machine."
        )


def _check_counts(repeats: int, warmup: int) -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"`warmup` must be an int >= 0, got {warmup!r}")


def median_rate(
    fn: Callable[[], object],
    n_items: int,
    repeats: int = 5,
    warmup: int = 1,
    *,
    sync: Callable[[], None] | None = None,
) -> float:
    """Items per second of ``fn``, the median over ``repeats`` timed calls.

    Args:
        fn: Processes ``n_items`` items per call.
        n_items: Items one call processes.
        repeats: Timed calls; the median of their rates is returned.
        warmup: Untimed calls first (allocator, caches, lazy initialisation).
        sync: Called before the clock is read, e.g. ``torch.cuda.synchronize`` for GPU work.

    Returns:
        The median rate in items per second.
    """
    return statistics.median(
        interleaved_rates({"fn": (fn, n_items)}, repeats=repeats, warmup=warmup, sync=sync)["fn"]
    )


def interleaved_rates(
    cases: Mapping[str, tuple[Callable[[], object], int]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Time several peers round-robin: repeat ``r`` runs every case once before ``r + 1`` starts.

    Args:
        cases: ``{name: (fn, n_items)}``; each ``fn`` processes ``n_items`` items per call.
        repeats: Timed calls per case.
        warmup: Untimed calls per case, all done before the first timed one.
        sync: Called before each clock read (``torch.cuda.synchronize`` for GPU work).

    Returns:
        ``{name: [rate of each repeat, items per second]}`` in the order of ``cases``.
    """
    _check_counts(repeats, warmup)
    wait = sync if sync is not None else (lambda: None)
    for fn, _ in cases.values():
        for _ in range(warmup):
            fn()
    wait()
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, n_items) in cases.items():
            start = time.perf_counter()
            fn()
            wait()
            elapsed = time.perf_counter() - start
            rates[name].append(n_items / max(elapsed, 1e-12))
    return rates


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; cells are converted with ``str``."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _markers(name: str) -> tuple[str, str]:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"`name` must use letters, digits, '_', '.' or '-', got {name!r}")
    return f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"


def write_docs_section(path: str | Path, name: str, markdown: str) -> None:
    """Replace the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` in ``path``.

    When the page has no such markers the section is appended at its end, markers included; the
    rest of the page is never touched.

    Raises:
        ValueError: ``name`` has characters other than letters, digits, ``_``, ``.`` and ``-``,
            or the page holds only one of the two markers, or either of them twice.
    """
    begin, end = _markers(name)
    page = Path(path)
    text = page.read_text(encoding="utf-8") if page.exists() else ""
    counts = (text.count(begin), text.count(end))
    body = f"{begin}\n{markdown.strip()}\n{end}"
    if counts == (0, 0):
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + body + "\n"
    elif counts == (1, 1) and text.index(begin) < text.index(end):
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + body + tail
    else:
        raise ValueError(
            f"{page} must hold `{begin}` and `{end}` once each, in that order; "
            f"found them {counts[0]} and {counts[1]} times"
        )
    page.parent.mkdir(parents=True, exist_ok=True)
    tmp = page.with_name(page.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(page)


def extract_archive(archive: str | Path, cache: str | Path, *, contains: str) -> Path:
    """Extract a ``.tar.gz`` once into ``cache`` and return the folder that holds ``contains``.

    The data sets in ``../shared/data`` are archives; benchmarks extract them into a cache outside
    the repository (never into it) and reuse the extraction on later runs.

    Args:
        archive: Path of the archive.
        cache: Folder to extract into; a sub-folder named after the archive is used.
        contains: A relative path that marks the wanted folder, e.g. ``"train"`` for an
            ImageFolder tree with ``train/`` and ``test/``; the shallowest folder holding it
            is returned.

    Returns:
        The folder under the extraction that holds ``contains``.

    Raises:
        SystemExit: The archive is missing, or holds no ``contains``.
    """
    name = Path(archive).name.split(".")[0]
    root = Path(cache).expanduser() / name
    done = root / ".extracted"
    if not done.exists():
        if not Path(archive).is_file():
            raise SystemExit(
                f"{archive} is not a file: pass the archive's path (see docs/benchmarks.md; "
                "in this project's workplace the archives are in ../shared/data/)"
            )
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        done.touch()
    candidates = sorted(
        (p.parent for p in root.rglob(contains) if p.relative_to(root).parts[-1] == contains),
        key=lambda p: len(p.parts),
    )
    if not candidates:
        raise SystemExit(f"{archive} holds no {contains!r} (extracted under {root})")
    return candidates[0]
