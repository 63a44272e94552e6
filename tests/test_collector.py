"""The automatic garbage collector paused around work that keeps many objects alive
(core/collector.py): imports' chunks and GraphQL requests."""

import gc

from landmark.core.collector import collect_young, young_collections_only


def test_paused_while_any_work_runs_and_resumed_after_the_last() -> None:
    assert gc.isenabled()
    with young_collections_only():
        assert not gc.isenabled()
        with young_collections_only():  # a second work in the same process
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    try:
        with young_collections_only():
            raise RuntimeError("a failed work")
    except RuntimeError:
        pass
    assert gc.isenabled()


def test_a_graphql_request_leaves_the_collector_running(client, tenant) -> None:
    query = {"query": "{ allFactSheets(first: 5) { totalCount } }"}
    answer = client.post("/services/pathfinder/v1/graphql", json=query, headers=tenant.auth)
    assert answer.status_code == 200 and answer.json()["errors"] is None
    assert gc.isenabled()
    bad = client.post(
        "/services/pathfinder/v1/graphql", json={"query": "{ nope }"}, headers=tenant.auth
    )
    assert bad.json()["errors"] and gc.isenabled()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _cycles(count: int) -> None:
    """Leave `count` unreachable cycles: garbage only the collector frees."""
    for _ in range(count):
        _Cycle()


def test_collect_young_collects_once_the_young_generation_is_full() -> None:
    collections: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "stop":
            collections.append(info["generation"])

    gc.collect()
    gc.callbacks.append(seen)
    try:
        with young_collections_only():
            _cycles(2)  # a small work: left to the next collection
            collect_young()
            assert collections == []
            _cycles(gc.get_threshold()[0])  # a large one: collected now
            collect_young()
        assert collections == [1]
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        gc.callbacks.remove(seen)
