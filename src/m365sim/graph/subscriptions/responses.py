"""``/v1.0/subscriptions`` and the ``/_sim`` control endpoints for change notifications.

Handlers parse, call the models and serialise; the rules live in ``models`` and
``delivery`` (see their docstrings for behaviour and differences from Graph).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from m365sim.dates import parse_datetime
from m365sim.exceptions import GraphError
from m365sim.graph.auth import Caller, authenticate, resolve_mailbox
from m365sim.graph.exceptions import BadRequest, ErrorAccessDenied, ResourceNotFound
from m365sim.graph.subscriptions.delivery import dispatcher_for, validate_endpoint
from m365sim.graph.subscriptions.exceptions import (
    ExpirationTooFar,
    ExtensionError,
    SubscriptionInvalidRequest,
    SubscriptionNotFound,
)
from m365sim.graph.subscriptions.models import (
    CHANGE_TYPES,
    MAX_CLIENT_STATE,
    TODO_LIFECYCLE_EVENTS,
    DeliverySettings,
    ParsedResource,
    Subscription,
    max_expiration,
    max_expiration_minutes,
    parse_resource,
    subscription_book,
)
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.state import SimState


def _parse_expiration(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise SubscriptionInvalidRequest(
            "expirationDateTime is a required property for subscription creation."
        )
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise SubscriptionInvalidRequest(
            f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'."
        ) from exc


def _check_expiration(state: SimState, expiration: datetime, kind: str) -> None:
    now = state.now()
    if expiration <= now:
        raise SubscriptionInvalidRequest("Subscription expiration must be in the future.")
    if expiration > max_expiration(now, kind):
        raise ExpirationTooFar(
            f"Subscription expiration can only be {max_expiration_minutes(kind)} minutes in the "
            "future."
        )


def _check_url(state: SimState, value: Any, name: str) -> str:
    """Graph requires HTTPS ("This URL must make use of the HTTPS protocol") and answers a
    plain ``http`` URL with "NotificationUrl scheme='http' is not supported.";
    ``SimConfig.allow_http_notification_urls`` lifts that for local development only."""
    if not isinstance(value, str) or not value:
        raise SubscriptionInvalidRequest(
            f"{name} is a required property for subscription creation."
        )
    parts = urlsplit(value)
    if parts.scheme == "http" and parts.netloc:
        if state.config.allow_http_notification_urls:
            return value
        label = name[0].upper() + name[1:]
        raise SubscriptionInvalidRequest(f"{label} scheme='http' is not supported.")
    if parts.scheme != "https" or not parts.netloc:
        raise SubscriptionInvalidRequest(f"Invalid '{name}': it must be an absolute https URL.")
    return value


def _parsed(resource: str) -> ParsedResource:
    parsed = parse_resource(resource)
    if parsed is None:
        raise SubscriptionInvalidRequest(
            f"The resource '{resource}' isn't supported for change notifications here; use "
            "users/{id}/messages, users/{id}/mailFolders('{folder}')/messages, "
            "users/{id}/events or users/{id}/todo/lists/{listId}/tasks."
        )
    return parsed


def _caller_and_mailbox(
    request: Request, resource: str, operation: str
) -> tuple[Caller, str, str | None, str]:
    """Check the caller may read the mailbox the resource names, as Graph does on create,
    renew and reauthorize; mailbox errors come back wrapped in ``ExtensionError``.

    To Do tasks need delegated ``Tasks.ReadWrite`` (Graph's permission table for
    subscriptions: ``Tasks.Read`` isn't enough, application permissions aren't supported),
    and the list must exist."""
    parsed = _parsed(resource)
    caller = authenticate(request)
    try:
        if not caller.app_only and parsed.user_key is not None:
            target = caller.tenant.find_user(parsed.user_key)
            if target is None or caller.user is None or target.id != caller.user.id:
                raise ErrorAccessDenied()
        if parsed.kind == "todoTask":
            _, owner = resolve_mailbox(
                request, parsed.user_key, "Tasks", permission="Tasks.ReadWrite"
            )
        else:
            _, owner = resolve_mailbox(
                request, parsed.user_key, "Mail" if parsed.kind == "message" else "Calendars"
            )
    except GraphError as exc:
        if exc.status == 401:
            raise
        raise ExtensionError(operation, exc) from exc
    folder = parsed.folder
    try:
        if folder is not None and parsed.kind == "message":
            from m365sim.graph.mail.backend import MailBackend

            mail = MailBackend(sim_state(request)).store(caller.tenant, owner)
            folder = mail.folder(folder).id
        elif folder is not None and parsed.kind == "todoTask":
            from m365sim.graph.todo.backend import TodoBackend

            store = TodoBackend(sim_state(request)).store(caller.tenant, owner)
            folder = store.task_list(folder).id
    except GraphError as exc:
        raise ExtensionError(operation, exc) from exc
    return caller, owner.id, folder, parsed.kind


def _owned(request: Request, caller: Caller) -> Subscription:
    state = sim_state(request)
    subscription = subscription_book(state).get(str(request.path_params["subscription_id"]))
    if (
        subscription is None
        or subscription.tenant_id != caller.tenant.id
        or subscription.app_id != caller.app_id
        or (caller.user is not None and subscription.creator_id != caller.user.id)
        or subscription.expiration <= state.now()
    ):
        raise SubscriptionNotFound()
    return subscription


async def _validated(state: SimState, url: str, subscription_id: str | None) -> None:
    problem = await validate_endpoint(state, url, subscription_id)
    if problem is not None:
        raise SubscriptionInvalidRequest(problem)


async def create_subscription(request: Request) -> Response:
    state = sim_state(request)
    authenticate(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise SubscriptionInvalidRequest("Expected a subscription object.")
    raw_types = body.get("changeType")
    if not isinstance(raw_types, str) or not raw_types.strip():
        raise SubscriptionInvalidRequest(
            "changeType is a required property for subscription creation."
        )
    change_types = tuple(dict.fromkeys(t.strip() for t in raw_types.split(",")))
    unknown = [t for t in change_types if t not in CHANGE_TYPES]
    if unknown:
        raise SubscriptionInvalidRequest(
            f"'{','.join(unknown)}' is not a valid change type. "
            f"Valid values: {', '.join(CHANGE_TYPES)}."
        )
    resource = body.get("resource")
    if not isinstance(resource, str) or not resource:
        raise SubscriptionInvalidRequest(
            "resource is a required property for subscription creation."
        )
    notification_url = _check_url(state, body.get("notificationUrl"), "notificationUrl")
    lifecycle_url = body.get("lifecycleNotificationUrl")
    if lifecycle_url is not None:
        lifecycle_url = _check_url(state, lifecycle_url, "lifecycleNotificationUrl")
    client_state = body.get("clientState")
    if client_state is not None and (
        not isinstance(client_state, str) or len(client_state) > MAX_CLIENT_STATE
    ):
        raise SubscriptionInvalidRequest(
            f"clientState must be a string of at most {MAX_CLIENT_STATE} characters."
        )
    if body.get("includeResourceData"):
        raise SubscriptionInvalidRequest(
            "includeResourceData requires an encryptionCertificate; notifications with "
            "resource data aren't supported by m365sim."
        )
    expiration = _parse_expiration(body.get("expirationDateTime"))
    _check_expiration(state, expiration, _parsed(resource).kind)
    caller, owner_id, folder, kind = _caller_and_mailbox(request, resource, "Create")
    await _validated(state, notification_url, None)
    if lifecycle_url:
        await _validated(state, lifecycle_url, None)
    principal = caller.tenant.service_principals.get(caller.app_id)
    subscription = Subscription(
        tenant_id=caller.tenant.id,
        app_id=caller.app_id,
        creator_id=caller.user.id
        if caller.user
        else (principal.id if principal else caller.app_id),
        user_id=owner_id,
        resource=resource,
        kind=kind,
        folder_id=folder,
        change_types=change_types,
        notification_url=notification_url,
        expiration=expiration,
        client_state=client_state,
        lifecycle_notification_url=lifecycle_url,
        latest_supported_tls_version=str(body.get("latestSupportedTlsVersion") or "v1_2"),
    )
    subscription_book(state).add(subscription)
    dispatcher_for(state).ensure_started()
    return JSONResponse(subscription.as_json(state.base_url), status_code=201)


async def list_subscriptions(request: Request) -> Response:
    state = sim_state(request)
    caller = authenticate(request)
    now = state.now()
    mine = [
        s.as_json(state.base_url)
        for s in subscription_book(state).all()
        if s.tenant_id == caller.tenant.id
        and s.app_id == caller.app_id
        and (caller.user is None or s.creator_id == caller.user.id)
        and s.expiration > now
    ]
    for item in mine:
        item.pop("@odata.context", None)
    return JSONResponse(
        {"@odata.context": f"{state.base_url}/v1.0/$metadata#subscriptions", "value": mine}
    )


async def get_subscription(request: Request) -> Response:
    state = sim_state(request)
    return JSONResponse(_owned(request, authenticate(request)).as_json(state.base_url))


async def update_subscription(request: Request) -> Response:
    """Renew (``expirationDateTime``) and/or move (``notificationUrl``, validated again)."""
    state = sim_state(request)
    subscription = _owned(request, authenticate(request))
    body = await json_body(request)
    if not isinstance(body, dict):
        raise SubscriptionInvalidRequest("Expected a subscription object.")
    _caller_and_mailbox(request, subscription.resource, "Update")
    expiration = subscription.expiration
    if "expirationDateTime" in body:
        expiration = _parse_expiration(body["expirationDateTime"])
        _check_expiration(state, expiration, subscription.kind)
    notification_url = subscription.notification_url
    if "notificationUrl" in body:
        notification_url = _check_url(state, body["notificationUrl"], "notificationUrl")
        if notification_url != subscription.notification_url:
            await _validated(state, notification_url, subscription.id)
    subscription.expiration = expiration
    subscription.notification_url = notification_url
    subscription.reauthorization_requested = False
    return JSONResponse(subscription.as_json(state.base_url))


async def delete_subscription(request: Request) -> Response:
    state = sim_state(request)
    subscription = _owned(request, authenticate(request))
    subscription_book(state).remove(subscription.id)
    return Response(status_code=204)


async def reauthorize_subscription(request: Request) -> Response:
    """Answer a ``reauthorizationRequired`` challenge: access is checked again."""
    subscription = _owned(request, authenticate(request))
    _caller_and_mailbox(request, subscription.resource, "Reauthorize")
    subscription.reauthorization_requested = False
    return Response(status_code=204)


# -- control API -----------------------------------------------------------------------------


async def sim_subscriptions(request: Request) -> Response:
    """Every live subscription, all tenants and apps."""
    state = sim_state(request)
    return JSONResponse(
        {"value": [s.as_json(state.base_url) for s in subscription_book(state).all()]}
    )


LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


async def sim_lifecycle(request: Request) -> Response:
    """``{"event": "missed" | "subscriptionRemoved" | "reauthorizationRequired"}``: send that
    lifecycle notification now (``subscriptionRemoved`` also deletes the subscription). To Do
    subscriptions get only ``reauthorizationRequired``, as from Graph."""
    state = sim_state(request)
    book = subscription_book(state)
    subscription = book.get(str(request.path_params["subscription_id"]))
    if subscription is None:
        raise ResourceNotFound(f"No subscription {request.path_params['subscription_id']!r}")
    body = await json_body(request)
    event = body.get("event") if isinstance(body, dict) else None
    if event not in LIFECYCLE_EVENTS:
        raise BadRequest(f"event must be one of {', '.join(LIFECYCLE_EVENTS)}")
    if not subscription.lifecycle_notification_url:
        raise BadRequest(
            "This subscription has no lifecycleNotificationUrl, so Graph would send it nothing."
        )
    if subscription.kind == "todoTask" and event not in TODO_LIFECYCLE_EVENTS:
        raise BadRequest(
            f"Graph sends {event} only for Outlook resources; To Do subscriptions get "
            "reauthorizationRequired."
        )
    if event == "subscriptionRemoved":
        book.remove(subscription.id)
    if event == "reauthorizationRequired":
        subscription.reauthorization_requested = True
    dispatcher_for(state).submit(
        subscription,
        {"value": [subscription.lifecycle(str(event))]},
        kind="lifecycle",
        event=str(event),
    )
    return Response(status_code=202)


async def sim_notifications(request: Request) -> Response:
    """The delivery log (validation, notification and lifecycle attempts), oldest first;
    filters ``subscriptionId``, ``kind``; ``pending`` counts deliveries not finished yet."""
    state = sim_state(request)
    book = subscription_book(state)
    with book.lock:
        entries = list(book.log)
    params = request.query_params
    if "subscriptionId" in params:
        entries = [e for e in entries if e.get("subscriptionId") == params["subscriptionId"]]
    if "kind" in params:
        entries = [e for e in entries if e.get("kind") == params["kind"]]
    return JSONResponse(
        {"value": entries, "count": len(entries), "pending": dispatcher_for(state).in_flight}
    )


async def sim_clear_notifications(request: Request) -> Response:
    book = subscription_book(sim_state(request))
    with book.lock:
        book.log.clear()
    return Response(status_code=204)


async def sim_notification_settings(request: Request) -> Response:
    """GET / PATCH the delivery timing (``DeliverySettings``),
    e.g. ``{"retryBaseSeconds": 0.05}``."""
    settings = subscription_book(sim_state(request)).settings
    if request.method == "PATCH":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("Expected a JSON object.")
        for key, value in body.items():
            attribute = DeliverySettings.FIELDS.get(key)
            if attribute is None:
                raise BadRequest(
                    f"Unknown setting {key!r}; known: {', '.join(DeliverySettings.FIELDS)}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise BadRequest(f"{key} must be a non-negative number")
            setattr(settings, attribute, float(value))
    return JSONResponse(settings.as_json())
