import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evoaug import ConfigError, GenomeSpace, Policy
from evoaug.search import Candidate, Search

OPS = ["Identity", "Invert", "Rotate", "Solarize", "Posterize", "Contrast"]
OBJECTIVES = ("strength", "simplicity")
# `_search()` after `_run(search, 2)` and one more `ask()`, saved by the build before the search
# state moved into `Search` (format version 1): the format must not change without a new version.
STATE_V1 = Path(__file__).parent / "fixtures" / "search_state_v1.json"


def _space(k: int = 3) -> GenomeSpace:
    return GenomeSpace(ops=OPS, n_subpolicies=k, n_genes=2)


def _search(seed: int = 3, **kwargs: object) -> Search:
    kwargs.setdefault("population_size", 8)
    return Search(
        _space(), OBJECTIVES, seed=seed, initial_policies=[Policy.preset("identity")], **kwargs
    )  # type: ignore[arg-type]


def _score(c: Candidate) -> dict[str, float] | None:
    if c.index % 5 == 4:
        return None  # failures are part of the state too
    genes = [g for sub in c.policy for g in sub]
    return {
        "strength": float(np.mean([g.level for g in genes])),
        "simplicity": -float(len(c.policy.ops)) + 0.01 * genes[0].probability,
    }


def _run(search: Search, generations: int) -> list[bytes]:
    asked = []
    for _ in range(generations):
        candidates = search.ask()
        asked.append(np.stack([c.genome for c in candidates]).tobytes())
        search.tell([_score(c) for c in candidates])
    return asked


def _through_json(state: dict) -> dict:
    return json.loads(json.dumps(state, allow_nan=False))


def _through_torch(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _is_plain(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or type(value) in (int, float, str, bool)


@pytest.mark.parametrize("transport", [_through_json, _through_torch])
def test_resume_continues_exactly(transport) -> None:  # type: ignore[no-untyped-def]
    reference = _search()
    expected = _run(reference, 10)

    first = _search()
    asked = _run(first, 4)
    state = first.state_dict()
    assert _is_plain(state)
    resumed = _search(seed=99)  # the seed is overridden by the loaded state
    resumed.load_state_dict(transport(state))
    assert resumed.checksum() == first.checksum()
    asked += _run(resumed, 6)
    assert asked == expected
    assert resumed.checksum() == reference.checksum()
    assert resumed.hypervolume_history == reference.hypervolume_history


def test_resume_between_ask_and_tell_returns_the_pending_candidates() -> None:
    reference = _search()
    expected = _run(reference, 6)
    first = _search()
    asked = _run(first, 2)
    pending = first.ask()
    resumed = _search()
    resumed.load_state_dict(_through_json(first.state_dict()))
    assert [c.genome.tobytes() for c in resumed.ask()] == [c.genome.tobytes() for c in pending]
    asked += _run(resumed, 4)
    assert asked == expected


@pytest.mark.parametrize("ask_first", [False, True])
def test_resume_at_generation_zero(ask_first: bool) -> None:
    expected = _run(_search(), 3)
    first = _search()
    if ask_first:
        first.ask()
    resumed = _search(seed=7)
    resumed.load_state_dict(_through_torch(first.state_dict()))
    assert _run(resumed, 3) == expected


def test_checksum_tracks_state() -> None:
    a, b = _search(), _search()
    assert a.checksum() == b.checksum()
    _run(a, 2)
    assert a.checksum() != b.checksum()
    _run(b, 2)
    assert a.checksum() == b.checksum()
    assert len(a.checksum()) == 64
    a.ask()
    assert a.checksum() != b.checksum()  # pending candidates are state


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda: Search(_space(), ("strength", "fairness"), population_size=8), "`objectives` was"),
        (lambda: Search(_space(k=2), OBJECTIVES, population_size=8), "`space` was"),
        (lambda: Search(_space(), OBJECTIVES, population_size=10), "`population_size` was 8"),
        (
            lambda: Search(_space(), OBJECTIVES, population_size=8, n_offsprings=4),
            "`n_offsprings` was 8",
        ),
    ],
)
def test_loading_state_from_another_configuration_fails(other, message: str) -> None:  # type: ignore[no-untyped-def]
    source = _search()
    _run(source, 1)
    with pytest.raises(ConfigError, match=message):
        other().load_state_dict(source.state_dict())


def test_malformed_states_fail_clearly() -> None:
    source = _search()
    _run(source, 2)
    state = source.state_dict()
    target = _search()
    with pytest.raises(ConfigError, match="search state must be a mapping, got list"):
        target.load_state_dict([])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"missing keys \['rng'\]"):
        target.load_state_dict({k: v for k, v in state.items() if k != "rng"})
    with pytest.raises(ConfigError, match="`version` must be 1, got 2"):
        target.load_state_dict({**state, "version": 2})
    bad_pop = {**state["population"], "X": state["population"]["X"][:-1]}
    with pytest.raises(ConfigError, match=r"`population.F` must have shape \(7, 2\)"):
        target.load_state_dict({**state, "population": bad_pop})
    with pytest.raises(ConfigError, match="`rng` is not a numpy generator state"):
        target.load_state_dict({**state, "rng": {"bit_generator": "MT19937"}})
    with pytest.raises(ConfigError, match="`generation` must be an int >= 0, got -1"):
        target.load_state_dict({**state, "generation": -1})
    with pytest.raises(ConfigError, match="search state `seed` must be an int >= 0, got True"):
        target.load_state_dict({**state, "seed": True})
    bad_rank = {**state["population"], "rank": [-1] * len(state["population"]["rank"])}
    with pytest.raises(ConfigError, match=r"`population\.rank` must be an int >= 0, got -1"):
        target.load_state_dict({**state, "population": bad_rank})
    assert target.generation == 0 and target.checksum() == _search().checksum()  # untouched


def test_state_format_is_that_of_version_1() -> None:
    saved = STATE_V1.read_text()
    search = _search(seed=0)
    search.load_state_dict(json.loads(saved))
    assert json.dumps(search.state_dict()) + "\n" == saved  # same keys, order, types, values
    assert search.generation == 2 and len(search.ask()) == 8  # the pending candidates
