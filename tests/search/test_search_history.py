import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from evoaug import ConfigError, GenomeSpace, Policy
from evoaug.search import (
    HistoryWriter,
    Search,
    history_record,
    read_history,
    read_pareto,
    write_best_policy,
    write_pareto,
)

SPACE = GenomeSpace(ops=["Identity", "Invert", "Rotate"], n_subpolicies=2, n_genes=1)


def _records(generation: int) -> list[dict]:
    search = Search(SPACE, ("accuracy", "fairness"), population_size=4, seed=generation)
    out = []
    for c in search.ask():
        failed = c.index == 1
        out.append(
            history_record(
                generation=generation,
                epoch=2 * generation,
                rank=c.index % 2,
                candidate=c,
                objectives=None if failed else {"accuracy": 0.5, "fairness": math.nan},
                failure="loss is NaN" if failed else None,
                seconds=0.25,
                pareto_rank=0,
            )
        )
    return out


def test_append_and_read_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    writer = HistoryWriter(tmp_path / "run")
    assert writer.path == tmp_path / "run" / "history.jsonl"
    first, second = _records(0), _records(1)
    writer.append(first)
    writer.append(second)
    assert len(fsyncs) == 2  # once per generation
    records, warnings = read_history(writer.path)
    assert warnings == []
    assert records == json.loads(json.dumps(first + second))
    record = records[0]
    assert record["objectives"] == {"accuracy": 0.5, "fairness": None}  # NaN stored as null
    assert records[1]["objectives"] is None and records[1]["failure"] == "loss is NaN"
    assert Policy.from_dict(record["policy"]) == SPACE.decode(np.array(record["genome"]))
    assert {"generation", "epoch", "rank", "index", "seconds", "pareto_rank"} <= set(record)
    assert read_history(tmp_path / "run")[0] == records  # a run directory works too
    assert writer.path.read_text().count("\n") == 8


def test_torn_last_line_is_reported_then_repaired(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path)
    writer.append(_records(0))
    line = json.dumps(_records(1)[0])
    with writer.path.open("a") as handle:
        handle.write(line[: len(line) // 2])  # a crash in the middle of a write
    records, warnings = read_history(writer.path)
    assert len(records) == 4
    assert len(warnings) == 1 and "line 5 is incomplete" in warnings[0]
    resumed = HistoryWriter(tmp_path)
    resumed.append(_records(2))
    assert resumed.dropped == line[: len(line) // 2]
    records, warnings = read_history(writer.path)
    assert warnings == [] and [r["generation"] for r in records] == [0] * 4 + [2] * 4


def test_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"generation": 0}\n{"generation": \n{"generation": 1}\n')
    with pytest.raises(ConfigError, match="line 2 is not valid JSON"):
        read_history(path)
    path.write_text('{"generation": 0}\n[1, 2]\n')
    with pytest.raises(ConfigError, match="line 2 must be a JSON object, got list"):
        read_history(path)
    path.write_text('{"generation": 0}\n{"gen')  # a torn last line is skipped, not an error
    assert read_history(path)[0] == [{"generation": 0}]
    with pytest.raises(ConfigError, match="history file not found"):
        read_history(tmp_path / "missing.jsonl")


def test_append_refuses_values_json_cannot_store(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path)
    with pytest.raises(ConfigError, match=r"`records\[0\]` is not plain JSON"):
        writer.append([{"accuracy": math.nan}])
    with pytest.raises(ConfigError, match=r"`records\[0\]` must be a mapping, got list"):
        writer.append([[1]])  # type: ignore[list-item]
    assert not writer.path.exists()


def test_pareto_and_best_policy_files(tmp_path: Path) -> None:
    search = Search(SPACE, ("accuracy", "fairness"), population_size=4)
    search.tell([{"accuracy": c.genome[2], "fairness": 1 - c.genome[2]} for c in search.ask()])
    front = search.pareto_front()
    pareto = write_pareto(tmp_path / "pareto.yaml", front)
    loaded = read_pareto(pareto)
    assert [p for p, _ in loaded] == [p for p, _ in front]
    assert [o for _, o in loaded] == [o for _, o in front]
    write_pareto(tmp_path / "pareto.yaml", [(front[0][0], {"accuracy": math.inf})])
    assert read_pareto(tmp_path / "pareto.yaml")[0][1] == {"accuracy": None}

    best = write_best_policy(tmp_path / "best_policy.yaml", front[0][0], front[0][1])
    assert Policy.from_yaml(best) == front[0][0]
    assert best.read_text().startswith("# evoaug best policy")
    assert "# accuracy: " in best.read_text()
    write_best_policy(best, Policy.preset("identity"))  # replaced whole
    assert Policy.from_yaml(best) == Policy.preset("identity")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_policy.yaml", "pareto.yaml"]


def test_failed_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_best_policy(tmp_path / "best_policy.yaml", Policy.preset("identity"))
    before = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_best_policy(path, Policy.preset("trivialaugment"))
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["best_policy.yaml"]  # no temporary left


def test_bad_result_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`front\[0\]` must be a \(policy, objectives\) pair"):
        write_pareto(tmp_path / "p.yaml", [Policy.preset("identity")])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"`front\[0\]\[0\]` must be an evoaug.Policy, got str"):
        write_pareto(tmp_path / "p.yaml", [("identity", {})])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"`objectives\['accuracy'\]` must be a number or null"):
        write_best_policy(tmp_path / "b.yaml", Policy.preset("identity"), {"accuracy": "high"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- policy: {}\n")
    with pytest.raises(ConfigError, match="entry 0 must be a mapping with keys"):
        read_pareto(bad)
    bad.write_text(
        "- {policy: {format_version: 1, sub_policies: [[{op: Spin}]]}, objectives: {}}\n"
    )
    with pytest.raises(ConfigError, match="entry 0: .*Spin"):
        read_pareto(bad)
    with pytest.raises(ConfigError, match="Pareto file not found"):
        read_pareto(tmp_path / "missing.yaml")


def test_truncate_keeps_the_records_a_checkpoint_knew_of(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path)
    assert writer.truncate(3) == 0  # no file yet
    writer.append(_records(0))
    writer.append(_records(1))
    with writer.path.open("a") as handle:
        handle.write('{"generation": 2, "tor')
    assert HistoryWriter(tmp_path).truncate(4) == 5
    assert [r["generation"] for r in read_history(writer.path)[0]] == [0] * 4
    assert HistoryWriter(tmp_path).truncate(10) == 0  # fewer lines than asked: nothing to drop
    resumed = HistoryWriter(tmp_path)
    assert resumed.truncate(0) == 4 and writer.path.read_bytes() == b""
    with pytest.raises(ConfigError, match="`n_records` must be an int >= 0, got -1"):
        resumed.truncate(-1)
