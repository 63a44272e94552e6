"""The delivery engine end to end: a change committed through the API reaches a real receiver."""

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cmdb_helpers import make_cmdb
from conftest import Server, Tenant
from webhook_helpers import Receiver, admin_principal, wait_until


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def subscribe(server: Server, tenant: Tenant, url: str, tag_sets: list[list[str]], **extra: Any):
    """A LeanIX-dialect PUSH subscription made through the domain service."""
    from landmark.webhooks import service
    from landmark.webhooks.models import WebhookSubscription

    async def make(session: Any) -> WebhookSubscription:
        who = await admin_principal(session, tenant.slug, tenant.admin_id)
        sub = WebhookSubscription(
            dialect="leanix",
            name=extra.pop("name", "test"),
            target_url=url,
            config={"tagSets": tag_sets, "payloadMode": "DEFAULT"},
            **extra,
        )
        await service.create(session, who, sub)
        return sub

    return server.run(make)


def test_a_cmdb_change_reaches_a_matching_subscription(client, server, tenant, receiver) -> None:
    subscribe(server, tenant, receiver.url, [["cmdb", "CI_CREATED"]])
    cmdb = make_cmdb(client, tenant.auth)
    ci = cmdb.ci(name="web-01")
    seen = receiver.wait_for(lambda r: len(r) >= 1)
    body = seen[0].json()
    assert body["type"] == "CiCreatedEvent"
    assert body["object"] == {"type": "ci", "id": ci["id"]}
    assert body["transactionSequenceNumber"] > 0
    assert seen[0].headers["User-Agent"].startswith("Landmark/")
    # Only CI creations: the category, organization, team, service and product were not sent.
    wait_until(lambda: delivered(server, tenant) >= 1)
    assert len(receiver.received) == 1


def delivered(server: Server, tenant: Tenant) -> int:
    from landmark.webhooks.models import SENT, WebhookDelivery

    async def count(session: Any) -> int:
        rows = await session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.account_id == tenant.slug, WebhookDelivery.state == SENT
            )
        )
        return len(rows.all())

    return int(server.run(count))
