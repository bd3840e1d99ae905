"""Change-notification subscriptions (create, renew, reauthorize, delete)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from m365sync.microsoft.graph import GraphClient

__all__ = [
    "create_subscription",
    "delete_subscription",
    "reauthorize_subscription",
    "renew_subscription",
]


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


async def create_subscription(
    graph: GraphClient,
    *,
    resource: str,
    notification_url: str,
    client_state: str,
    expires_at: datetime,
    change_type: str = "created,updated,deleted",
) -> dict[str, Any]:
    """Microsoft validates ``notification_url`` (and the lifecycle URL, the same here)
    with a handshake before answering."""
    return await graph.post_json(
        "/subscriptions",
        {
            "changeType": change_type,
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": notification_url,
            "resource": resource,
            "expirationDateTime": _when(expires_at),
            "clientState": client_state,
        },
    )


async def renew_subscription(
    graph: GraphClient, subscription_id: str, expires_at: datetime
) -> dict[str, Any]:
    return await graph.patch_json(
        f"/subscriptions/{subscription_id}", {"expirationDateTime": _when(expires_at)}
    )


async def reauthorize_subscription(graph: GraphClient, subscription_id: str) -> None:
    await graph.request("POST", f"/subscriptions/{subscription_id}/reauthorize")


async def delete_subscription(graph: GraphClient, subscription_id: str) -> None:
    await graph.delete(f"/subscriptions/{subscription_id}")
