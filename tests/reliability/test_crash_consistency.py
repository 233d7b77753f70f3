"""Crash-consistent run files: history.jsonl is appended in whole, fsynced lines and read back
whatever byte a crash cut it at; result files and reports are replaced whole (temp + rename)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from evoaug import Policy
from evoaug._files import atomic_write_text
from evoaug.callback._rundir import append_timeline, truncate_timeline
from evoaug.report import write_report
from evoaug.report._examples import example_run
from evoaug.search import HistoryWriter, read_history, write_best_policy, write_pareto


def _records(generation: int, n: int = 3) -> list[dict[str, Any]]:
    return [
        {"generation": generation, "index": i, "objectives": {"accuracy": 0.5 + i / 10}}
        for i in range(n)
    ]


def test_every_cut_of_the_last_line_reads_back_the_whole_lines(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path)
    writer.append(_records(0))
    writer.append(_records(1))
    data = writer.path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1  # start of the last line
    whole = read_history(writer.path)[0]
    # A crash after any byte of the last line, up to its newline (a complete record without
    # it is torn too: the next append cuts it off, so a reader must not count it).
    for cut in range(last + 1, len(data)):
        path = tmp_path / f"cut{cut}" / "history.jsonl"
        path.parent.mkdir()
        path.write_bytes(data[:cut])
        records, warnings = read_history(path)
        assert records == whole[:-1], cut
        assert len(warnings) == 1 and "line 6 is incomplete" in warnings[0], cut
        resumed = HistoryWriter(path.parent)  # the next append cuts the torn tail off
        resumed.append(_records(2, n=1))
        assert read_history(path) == (whole[:-1] + _records(2, n=1), [])
    # a cut exactly after a newline is no tear at all
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "history.jsonl").write_bytes(data[:last])
    assert read_history(tmp_path / "clean") == (whole[:-1], [])


def test_a_crash_in_the_middle_of_an_append_loses_only_that_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = HistoryWriter(tmp_path)
    writer.append(_records(0))
    real_open = Path.open

    class _Dies:
        """A file handle whose write stores half the text, then the process 'dies'."""

        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> _Dies:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, text: str) -> int:
            self.handle.write(text[: len(text) // 2])
            self.handle.flush()
            raise KeyboardInterrupt  # like a kill: no cleanup code of ours runs

    def dying_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, mode, *args, **kwargs)
        return _Dies(handle) if mode == "a" else handle

    monkeypatch.setattr(Path, "open", dying_open)
    with pytest.raises(KeyboardInterrupt):
        writer.append(_records(1))
    monkeypatch.undo()
    records, warnings = read_history(writer.path)
    assert records == _records(0) + _records(1)[:1]  # half of the text: one whole line of three
    assert len(warnings) == 1 and "line 5 is incomplete" in warnings[0]
    # The resumed run keeps what its checkpoint knew of (generation 0), then writes it again.
    resumed = HistoryWriter(tmp_path)
    assert resumed.truncate(len(_records(0))) == 2  # the whole line and the torn one
    resumed.append(_records(1))
    assert read_history(writer.path) == (_records(0) + _records(1), [])


def test_history_appends_are_fsynced_once_per_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    writer = HistoryWriter(tmp_path)
    for generation in range(3):
        writer.append(_records(generation))
        assert writer.path.read_bytes().endswith(b"\n")  # whole lines only
    assert len(synced) == 3


@pytest.mark.parametrize("name", ["best_policy.yaml", "pareto.yaml", "report"])
def test_a_failed_write_leaves_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    run_dir = example_run(tmp_path, generations=1, samples=False)
    identity, other = Policy.preset("identity"), Policy.preset("trivialaugment")
    if name == "report":
        targets = list(write_report(run_dir, n_bootstrap=20))

        def write() -> None:
            write_report(run_dir, n_bootstrap=20, seed=1)

    elif name == "best_policy.yaml":
        targets = [write_best_policy(run_dir / name, identity, {"accuracy": 0.5})]

        def write() -> None:
            write_best_policy(run_dir / name, other, {"accuracy": 0.9})

    else:
        targets = [write_pareto(run_dir / name, [(identity, {"accuracy": 0.5})])]

        def write() -> None:
            write_pareto(run_dir / name, [(other, {"accuracy": 0.9})])

    before = {path: path.read_bytes() for path in targets}
    files_before = sorted(p.name for p in run_dir.iterdir())

    def crash(src: str, dst: str) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", crash)  # the rename is the commit point
    with pytest.raises(OSError, match="no space left"):
        write()
    assert {path: path.read_bytes() for path in targets} == before
    assert sorted(p.name for p in run_dir.iterdir()) == files_before  # no temporary left


def test_atomic_write_goes_through_a_temporary_file_and_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])

    def replace(src: str, dst: str) -> None:
        events.append(f"rename {Path(src).name.startswith('.out.txt.')} -> {Path(dst).name}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    atomic_write_text(tmp_path / "out.txt", "new")
    assert events == ["fsync", "rename True -> out.txt"]


def test_a_real_fit_writes_its_result_files_by_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits_fit
) -> None:  # type: ignore[no-untyped-def]
    renamed: list[str] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        renamed.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    digits_fit.fit(tmp_path, max_epochs=3, checkpoint=False)
    run_dir = tmp_path / "evoaug"
    files = sorted(p.name for p in run_dir.iterdir())
    assert files == [
        "best_policy.yaml", "history.jsonl", "pareto.yaml", "run.json", "samples.pt",
        "timeline.jsonl",
    ]  # fmt: skip
    appended = {"history.jsonl", "timeline.jsonl"}  # append-only, whole fsynced lines
    assert set(files) - appended <= set(renamed)
    assert renamed.count("best_policy.yaml") == 2 == renamed.count("pareto.yaml")  # per generation


def test_timeline_lines_after_the_checkpoint_are_dropped_on_resume(tmp_path: Path) -> None:
    for epoch in range(4):
        append_timeline(tmp_path, {"epoch": epoch, "generation": epoch})
    with (tmp_path / "timeline.jsonl").open("a") as handle:
        handle.write('{"epoch": 4, "gen')  # torn by the kill
    assert truncate_timeline(tmp_path, last_epoch=1) == 3
    lines = (tmp_path / "timeline.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    assert truncate_timeline(tmp_path, last_epoch=5) == 0
    assert truncate_timeline(tmp_path / "missing", last_epoch=0) == 0


def test_atomic_writes_get_the_mode_a_plain_open_would(tmp_path: Path) -> None:
    import os
    import stat

    from evoaug._files import atomic_write_text

    path = atomic_write_text(tmp_path / "run.json", "{}\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode)  # not mkstemp's private 0600
