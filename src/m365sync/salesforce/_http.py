"""The requests session every Salesforce call goes through (OAuth and REST alike)."""

from __future__ import annotations

from typing import Any

import requests

from m365sync.settings import Settings


class SalesforceSession(requests.Session):
    """A ``requests.Session`` that trusts what the product's settings say and never waits
    forever.

    - ``verify`` is ``settings.tls_verify``: the ``ca_bundle`` setting when set (requests
      would otherwise let ``REQUESTS_CA_BUNDLE`` override a session's ``verify``: the
      setting wins), the environment's or the system's CAs when not;
    - every request without a timeout of its own gets ``salesforce_timeout_seconds``
      (simple-salesforce passes none).
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
        return super().request(*args, **kwargs)
