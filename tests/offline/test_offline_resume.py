"""Resume: replaying the history rebuilds the search; no candidate is evaluated twice or lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evoaug import ConfigError, GenomeSpace
from evoaug.offline import OfflineSearch, SerialRunner
from evoaug.search import read_history

OBJECTIVES = ("accuracy", "diversity", "fairness")


def _search(
    lower: Any, out: Path, space: GenomeSpace, generations: int, **kw: Any
) -> OfflineSearch:
    settings: dict[str, Any] = {"population_size": 6, "seed": 3, "surrogate": "rf"}
    settings.update(kw)
    return OfflineSearch(lower, out=out, generations=generations, space=space, **settings)


def _by_id(out: Path) -> dict[str, dict[str, Any]]:
    records, warnings = read_history(out / "evoaug" / "history.jsonl")
    assert not warnings
    ids = [r["candidate"] for r in records]
    assert len(ids) == len(set(ids)), "a candidate was recorded twice"
    return {r["candidate"]: r for r in records}


def _same(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> None:
    assert sorted(a) == sorted(b)
    for cid in a:
        for key in ("genome", "objectives", "policy", "generation", "index", "predicted"):
            assert a[cid][key] == b[cid][key], (cid, key)


def test_stop_after_a_generation_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, small_space: GenomeSpace, counting: Any
) -> None:
    whole = counting(OBJECTIVES)
    _search(whole, tmp_path / "whole", small_space, 3).run(SerialRunner())

    first = counting(OBJECTIVES)
    _search(first, tmp_path / "split", small_space, 1).run(SerialRunner())
    second = counting(OBJECTIVES)
    resumed = _search(second, tmp_path / "split", small_space, 3)
    front = resumed.run(SerialRunner(), resume=True)

    assert len(first.calls) == 6 and len(second.calls) == 12  # 6 per generation
    assert resumed.n_evaluated == 12
    assert not set(first.calls) & set(second.calls)  # nothing evaluated twice
    _same(_by_id(tmp_path / "whole"), _by_id(tmp_path / "split"))
    assert len(_by_id(tmp_path / "split")) == 18
    assert front and resumed.search is not None
    lines = (tmp_path / "split" / "evoaug" / "surrogate.jsonl").read_text().splitlines()
    assert [json.loads(line)["generation"] for line in lines] == [1, 2]


def test_interrupt_mid_generation_then_resume_loses_and_repeats_nothing(
    tmp_path: Path, small_space: GenomeSpace, counting: Any
) -> None:
    reference = counting(OBJECTIVES)
    _search(reference, tmp_path / "ref", small_space, 3).run(SerialRunner())

    crashing = counting(OBJECTIVES, interrupt_at=9)  # the 3rd candidate of generation 1
    with pytest.raises(KeyboardInterrupt):
        _search(crashing, tmp_path / "run", small_space, 3).run(SerialRunner())
    assert len(_by_id(tmp_path / "run")) == 8
    again = counting(OBJECTIVES)
    _search(again, tmp_path / "run", small_space, 3).run(SerialRunner(), resume=True)

    assert len(crashing.calls) + len(again.calls) == 18
    assert not set(crashing.calls) & set(again.calls)
    _same(_by_id(tmp_path / "ref"), _by_id(tmp_path / "run"))


def test_a_torn_last_line_is_dropped_and_that_candidate_evaluated_again(
    tmp_path: Path, small_space: GenomeSpace, counting: Any
) -> None:
    out = tmp_path / "run"
    _search(counting(OBJECTIVES), out, small_space, 2, surrogate="none").run(SerialRunner())
    history = out / "evoaug" / "history.jsonl"
    data = history.read_bytes()
    history.write_bytes(data[: len(data) - 40])  # killed in the middle of the last write
    again = counting(OBJECTIVES)
    _search(again, out, small_space, 2, surrogate="none").run(SerialRunner(), resume=True)
    assert len(again.calls) == 1
    assert len(_by_id(out)) == 12


def test_a_finished_run_resumed_evaluates_nothing(
    tmp_path: Path, small_space: GenomeSpace, counting: Any
) -> None:
    out = tmp_path / "run"
    _search(counting(OBJECTIVES), out, small_space, 2).run(SerialRunner())
    before = (out / "evoaug" / "history.jsonl").read_bytes()
    again = counting(OBJECTIVES)
    search = _search(again, out, small_space, 2)
    search.run(SerialRunner(), resume=True)
    assert again.calls == [] and search.n_evaluated == 0
    assert (out / "evoaug" / "history.jsonl").read_bytes() == before


def test_an_existing_run_without_resume_is_refused(
    tmp_path: Path, small_space: GenomeSpace, counting: Any
) -> None:
    out = tmp_path / "run"
    _search(counting(OBJECTIVES), out, small_space, 1).run(SerialRunner())
    with pytest.raises(ConfigError, match=r"already holds a search \(6 candidates.*--resume"):
        _search(counting(OBJECTIVES), out, small_space, 2).run(SerialRunner())


def test_resume_with_other_settings_is_refused_naming_them(
    tmp_path: Path, small_space: GenomeSpace, counting: Any
) -> None:
    out = tmp_path / "run"
    _search(counting(OBJECTIVES), out, small_space, 1).run(SerialRunner())
    changed = r"other settings \(population_size: 6 -> 8.*seed: 3 -> 4"
    with pytest.raises(ConfigError, match=changed):
        _search(counting(OBJECTIVES), out, small_space, 2, population_size=8, seed=4).run(
            SerialRunner(), resume=True
        )


def test_an_edited_history_is_refused(
    tmp_path: Path, small_space: GenomeSpace, counting: Any
) -> None:
    out = tmp_path / "run"
    _search(counting(OBJECTIVES), out, small_space, 1).run(SerialRunner())
    history = out / "evoaug" / "history.jsonl"
    records = [json.loads(line) for line in history.read_text().splitlines()]
    records[2]["genome"][1] = 0.123456
    history.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ConfigError, match=r"g0000-c00\d has another genome"):
        _search(counting(OBJECTIVES), out, small_space, 2).run(SerialRunner(), resume=True)
