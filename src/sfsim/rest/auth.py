"""Who is calling, and the daily API request limit.

Every REST call needs a live session (``Authorization: Bearer <token>``; Salesforce also
takes ``OAuth <token>``); anything else is 401 ``INVALID_SESSION_ID``. Each call counts
once against the org's rolling 24-hour allowance (a composite request counts once, not
per subrequest); past it, 403 ``REQUEST_LIMIT_EXCEEDED``.
"""

from __future__ import annotations

from starlette.requests import Request

from sfsim.data.exceptions import InvalidSessionId, RequestLimitExceeded
from sfsim.http import Caller, sf_state, tag_request

SUBREQUEST_FLAG = "sfsim_subrequest"


def require_session(request: Request, *, count: bool = True) -> Caller:
    state = sf_state(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "oauth") or not token.strip():
        raise InvalidSessionId()
    session = state.auth.session(token.strip())
    if session is None:
        raise InvalidSessionId()
    found = state.records.find(session.user_id)
    if found is None or not found[1]["IsActive"]:
        raise InvalidSessionId()
    user = found[1]
    tag_request(request, app=session.app, username=user["Username"])
    if count and not request.scope.get("state", {}).get(SUBREQUEST_FLAG):
        now = state.now()
        used, maximum = state.usage.used(now), state.config.daily_api_requests
        if used >= maximum:
            raise RequestLimitExceeded()
        state.usage.record(now)
        tag_request(request, counted=True)
    return Caller(user_id=user["Id"], username=user["Username"], app=session.app)
