"""The automatic garbage collector paused around work that keeps many objects alive
(core/collector.py): imports' chunks and GraphQL requests."""

import gc

from landmark.core.collector import young_collections_only


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
