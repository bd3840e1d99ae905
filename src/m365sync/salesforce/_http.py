"""The requests session every Salesforce call goes through (OAuth and REST alike)."""

from __future__ import annotations

import re
from typing import Any

import requests

from m365sync.metrics import record_salesforce_call
from m365sync.salesforce.errors import classify_response
from m365sync.settings import Settings

_REST_PATH = re.compile(r"/services/data/v[\d.]+/(?P<rest>[^?#]*)")


def operation_of(method: str, url: str) -> str:
    """What a Salesforce call does, from its method and URL: the ``operation`` label of
    ``m365sync_salesforce_calls`` (a short fixed list; never an id or an object name)."""
    if "/services/oauth2/" in url:
        return "token"
    match = _REST_PATH.search(url)
    if match is None:
        return "other"
    parts = [p for p in match.group("rest").split("/") if p]
    method = method.upper()
    if not parts:
        return "other"
    head = parts[0]
    if head in ("query", "queryAll"):
        return "query"
    if head == "limits":
        return "limits"
    if head == "composite":
        return "collections" if parts[1:2] == ["sobjects"] else "composite"
    if head != "sobjects":
        return "other"
    if len(parts) == 1 or parts[-1] == "describe":
        return "describe"
    if len(parts) >= 3 and parts[2] in ("updated", "deleted") and method == "GET":
        return parts[2]
    if len(parts) == 2:
        return "create" if method == "POST" else "describe"
    if len(parts) >= 4 and method == "PATCH":
        return "upsert"
    return {"PATCH": "update", "DELETE": "delete", "GET": "read"}.get(method, "other")


def _outcome(response: requests.Response) -> str:
    if response.status_code < 300 or response.status_code == 304:
        return "ok"
    return str(classify_response(response.status_code, response.content).category)


class SalesforceSession(requests.Session):
    """A ``requests.Session`` that trusts what the product's settings say and never waits
    forever.

    - ``verify`` is ``settings.tls_verify``: the ``ca_bundle`` setting when set (requests
      would otherwise let ``REQUESTS_CA_BUNDLE`` override a session's ``verify``: the
      setting wins), the environment's or the system's CAs when not;
    - every request without a timeout of its own gets ``salesforce_timeout_seconds``
      (simple-salesforce passes none);
    - every call is counted in ``m365sync_salesforce_calls{operation,outcome}``
      (``m365sync.metrics``).
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.verify = settings.tls_verify
        self._pinned = settings.ca_bundle is not None
        self.timeout = settings.salesforce_timeout_seconds

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        merged: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        if self._pinned:
            merged["verify"] = self.verify
        return merged

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        method = args[0] if args else kwargs.get("method", "")
        url = args[1] if len(args) > 1 else kwargs.get("url", "")
        operation = operation_of(str(method), str(url))
        try:
            response = super().request(*args, **kwargs)
        except requests.RequestException:
            record_salesforce_call(operation, "network")
            raise
        record_salesforce_call(operation, _outcome(response))
        return response
