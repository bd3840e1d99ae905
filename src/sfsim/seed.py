"""Seeds: YAML (or JSON) describing one org — who it is, its users, connected apps, custom
fields, rules and records. ``load_seed`` applies one to an ``SfState``; the control API
takes the same shape as JSON (``POST /_sim/seed``).

Shape (every section optional)::

    org: {name, id, myDomain, sandbox, edition, dailyApiRequests, enhancedEmail}
    users: [{username, firstName, lastName, email, alias, active, password}]
    connectedApps: [{name, consumerKey, consumerSecret, certificate | certificateFile,
                     callbackUrls, clientCredentialsUser, preAuthorized, requirePkce,
                     requireSecretForWebServerFlow, scopes}]
    customFields: {Account: [{name: External_Id__c, type: string, length, externalId,
                              unique, label, required, picklist}]}
    records: {Account: [{_ref: acme, Name: Acme}], Contact: [{AccountId: "@acme", ...}]}
    validationRules: [{object, name, field, kind: required|pattern|notEqual, pattern,
                       value, message, active}]
    duplicateRules: [{object, name, fields: [Email], action: block|alert, active}]

In ``records``, a string ``"@name"`` is the id of the record seeded with ``_ref: name`` or
of the user whose username is ``name``; ``OwnerId`` defaults to the first user. Records
are loaded before the rules, so a seed's own data never trips them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sfsim.data.rules import DuplicateRule, ValidationRule
from sfsim.oauth.models import ConnectedApp
from sfsim.schema.fields import FieldDef, PicklistValue
from sfsim.state import SfState

DEMO_SEED = Path(__file__).parent / "seeds" / "demo.yaml"
BASE_DIR_KEY = "_baseDir"
EMAIL_OBJECTS = ("EmailMessageRelation", "EmailMessage")
"""Objects an org without Enhanced Email (and without Email-to-Case) does not have."""


class SeedError(ValueError):
    """A seed that cannot be loaded; the message names the entry and what is wrong."""


def read_seed(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise SeedError(f"{path} does not hold a mapping")
    data[BASE_DIR_KEY] = str(path.parent)
    return data


def load_seed(state: SfState, data: dict[str, Any]) -> None:
    """Apply ``data`` to ``state`` (on top of what it holds; reset first for a clean org)."""
    base_dir = Path(data.get(BASE_DIR_KEY, "."))
    try:
        _load_org(state, data.get("org") or {})
        for obj_name, fields in (data.get("customFields") or {}).items():
            if obj_name in EMAIL_OBJECTS and not state.org.enhanced_email:
                continue  # the org has no such object
            for spec in fields:
                state.records.add_custom_field(obj_name, _field(spec))
        refs: dict[str, str] = {}
        for spec in data.get("users") or []:
            _load_user(state, spec, refs)
        for spec in data.get("connectedApps") or []:
            state.auth.add_app(_app(spec, base_dir))
        for obj_name, records in (data.get("records") or {}).items():
            for spec in records:
                _load_record(state, obj_name, spec, refs)
        for spec in data.get("validationRules") or []:
            state.records.validation_rules.append(
                ValidationRule(
                    object=spec["object"],
                    name=spec["name"],
                    field=spec["field"],
                    kind=spec.get("kind", "required"),
                    message=spec.get("message", "Validation failed."),
                    pattern=spec.get("pattern", ""),
                    value=spec.get("value"),
                    active=bool(spec.get("active", True)),
                )
            )
        for spec in data.get("duplicateRules") or []:
            state.records.duplicate_rules.append(
                DuplicateRule(
                    object=spec["object"],
                    name=spec["name"],
                    fields=list(spec.get("fields", ["Email"])),
                    action=spec.get("action", "block"),
                    active=bool(spec.get("active", True)),
                )
            )
        if not state.org.enhanced_email:
            for name in EMAIL_OBJECTS:
                state.records.schema.remove(name)
    except KeyError as exc:
        raise SeedError(f"missing {exc.args[0]!r}") from exc
    except SeedError:
        raise
    except Exception as exc:  # a record refused by the org's rules, a bad field spec...
        raise SeedError(str(getattr(exc, "detail", exc))) from exc


def _load_org(state: SfState, spec: dict[str, Any]) -> None:
    org = state.org
    org.name = spec.get("name", org.name)
    org.id = spec.get("id", org.id)
    org.my_domain = spec.get("myDomain", org.my_domain)
    org.sandbox = spec.get("sandbox", org.sandbox)
    org.edition = spec.get("edition", org.edition)
    if "dailyApiRequests" in spec:
        state.config.daily_api_requests = int(spec["dailyApiRequests"])
    if spec.get("enhancedEmail") is False:
        # Switched off: the org has no EmailMessage objects at all (Enhanced Email and
        # Email-to-Case off; ``load_seed`` removes them); switching it on takes a reset.
        org.enhanced_email = False


def _field(spec: dict[str, Any]) -> FieldDef:
    picklist = tuple(PicklistValue(str(v)) for v in spec.get("picklist", []))
    return FieldDef(
        name=spec["name"],
        type=spec.get("type", "string"),
        label=spec.get("label", ""),
        length=spec.get("length"),
        nillable=not spec.get("required", False),
        external_id=bool(spec.get("externalId", False)),
        unique=bool(spec.get("unique", False)),
        picklist=picklist,
        restricted_picklist=bool(spec.get("restrictedPicklist", False)),
        reference_to=tuple(spec.get("referenceTo", ())),
        relationship_name=spec.get("relationshipName"),
    )


def _load_user(state: SfState, spec: dict[str, Any], refs: dict[str, str]) -> None:
    store = state.records
    user_obj = store.object("User")
    first = next(iter(store.live("User")), None)
    values = {
        "Username": spec["username"],
        "FirstName": spec.get("firstName"),
        "LastName": spec["lastName"],
        "Email": spec.get("email", spec["username"]),
        "Alias": spec.get("alias", spec["lastName"][:8]),
        "IsActive": bool(spec.get("active", True)),
        "Title": spec.get("title"),
    }
    record = store.insert(user_obj, values, user_id=first["Id"] if first else "")
    if first is None:
        record.update(CreatedById=record["Id"], LastModifiedById=record["Id"])
    if spec.get("password"):
        state.auth.passwords[record["Id"]] = str(spec["password"])
    refs[spec["username"]] = record["Id"]
    if spec.get("ref"):
        refs[str(spec["ref"])] = record["Id"]


def _app(spec: dict[str, Any], base_dir: Path) -> ConnectedApp:
    certificate = spec.get("certificate")
    if certificate is None and spec.get("certificateFile"):
        certificate = (base_dir / spec["certificateFile"]).read_text(encoding="utf-8")
    pre_authorized = spec.get("preAuthorized")
    return ConnectedApp(
        name=spec["name"],
        consumer_key=spec["consumerKey"],
        consumer_secret=spec["consumerSecret"],
        certificate_pem=certificate,
        callback_urls=list(spec.get("callbackUrls", [])),
        client_credentials_user=spec.get("clientCredentialsUser"),
        pre_authorized=list(pre_authorized) if pre_authorized is not None else None,
        require_secret_for_web_server_flow=bool(spec.get("requireSecretForWebServerFlow", True)),
        require_pkce=bool(spec.get("requirePkce", True)),
        scopes=list(spec.get("scopes", ["api", "refresh_token"])),
    )


def _resolve(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("@"):
        key = value[1:]
        if key not in refs:
            raise SeedError(f"unknown reference {value!r}")
        return refs[key]
    return value


def _load_record(state: SfState, obj_name: str, spec: dict[str, Any], refs: dict[str, str]) -> None:
    store = state.records
    obj = store.object(obj_name)
    owner = next(iter(store.live("User")), None)
    if owner is None:
        raise SeedError("records need at least one user (the owner) seeded first")
    values = {k: _resolve(v, refs) for k, v in spec.items() if k != "_ref"}
    record = store.insert(obj, values, user_id=owner["Id"], allow_duplicates=True)
    if spec.get("_ref"):
        refs[str(spec["_ref"])] = record["Id"]
