"""SOAP as Exchange Web Services speaks it: namespaces, a hardened parser, element builders
and the envelope every answer travels in.

Requests are parsed with lxml (no DTDs, no entities, no network). Answers are built as lxml
trees under the prefixes Exchange uses (``s``, ``m``, ``t``; ``e`` in fault details) and
serialised with an XML declaration, UTF-8, as Exchange 2016/2019 write them. Every answer
carries ``ServerVersionInfo`` in the SOAP header; faults do not, as in Exchange.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from lxml import etree

__all__ = [
    "AUTODISCOVER",
    "ERRORS",
    "MESSAGES",
    "SOAP",
    "TYPES",
    "WSA",
    "XSI",
    "XmlError",
    "child",
    "children",
    "element",
    "envelope",
    "ews_date",
    "ews_datetime",
    "ews_duration",
    "fault",
    "local_name",
    "m",
    "parse_xml",
    "qname",
    "sub",
    "t",
    "text_of",
    "to_bytes",
]

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
MESSAGES = "http://schemas.microsoft.com/exchange/services/2006/messages"
TYPES = "http://schemas.microsoft.com/exchange/services/2006/types"
ERRORS = "http://schemas.microsoft.com/exchange/services/2006/errors"
AUTODISCOVER = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
WSA = "http://www.w3.org/2005/08/addressing"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


class XmlError(ValueError):
    """A body that is not well-formed XML."""


def parse_xml(raw: bytes) -> Any:
    """The root element of ``raw``; ``XmlError`` when it is not XML."""
    try:
        return etree.fromstring(raw, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlError(str(exc)) from exc


def qname(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def m(name: str) -> str:
    """A name in the ``messages`` schema."""
    return f"{{{MESSAGES}}}{name}"


def t(name: str) -> str:
    """A name in the ``types`` schema."""
    return f"{{{TYPES}}}{name}"


def child(parent: Any, tag: str) -> Any:
    """The first child called ``tag`` (Clark notation), or None."""
    if parent is None:
        return None
    return parent.find(tag)


def children(parent: Any, tag: str | None = None) -> list[Any]:
    if parent is None:
        return []
    return [c for c in parent if isinstance(c.tag, str) and (tag is None or c.tag == tag)]


def text_of(parent: Any, tag: str, default: str | None = None) -> str | None:
    found = child(parent, tag)
    if found is None or found.text is None:
        return default
    return str(found.text)


def local_name(element: Any) -> str:
    return str(etree.QName(element).localname)


def sub(parent: Any, tag: str, text: Any = None, **attributes: Any) -> Any:
    """Append ``<tag attributes>text</tag>`` to ``parent``; booleans are ``true``/``false``."""
    element = etree.SubElement(parent, tag)
    for name, value in attributes.items():
        if value is not None:
            element.set(name, _text(value))
    if text is not None:
        element.text = _text(text)
    return element


def element(tag: str, nsmap: dict[str | None, str] | None = None, **attributes: Any) -> Any:
    made = etree.Element(tag, nsmap=nsmap)
    for name, value in attributes.items():
        if value is not None:
            made.set(name, _text(value))
    return made


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return ews_datetime(value)
    if isinstance(value, date):
        return ews_date(value)
    return str(value)


def ews_datetime(value: datetime) -> str:
    """``2026-01-05T17:00:00Z``: EWS writes date-times in UTC, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ews_date(value: date) -> str:
    return value.isoformat()


def ews_duration(minutes: int) -> str:
    """An ``xs:duration`` of whole minutes (``PT1H30M``, ``-PT8H``, ``PT0M``)."""
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{sign}PT{hours}H{rest}M"
    if hours:
        return f"{sign}PT{hours}H"
    return f"{sign}PT{rest}M"


def to_bytes(root: Any) -> bytes:
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return out


def envelope(body_children: Iterable[Any], *, server_version: dict[str, str] | None = None) -> Any:
    """``s:Envelope`` with ``ServerVersionInfo`` (unless None) and the given body elements."""
    root = element(qname(SOAP, "Envelope"), nsmap={"s": SOAP})
    if server_version is not None:
        header = sub(root, qname(SOAP, "Header"))
        info = etree.SubElement(
            header,
            t("ServerVersionInfo"),
            nsmap={"h": TYPES, None: TYPES, "xsd": XSD, "xsi": XSI},
        )
        for name, value in server_version.items():
            info.set(name, value)
    body = sub(root, qname(SOAP, "Body"))
    for item in body_children:
        body.append(item)
    return root


def fault(
    code: str,
    message: str,
    *,
    detail_values: dict[str, str] | None = None,
    response_code: str | None = None,
) -> Any:
    """A SOAP 1.1 ``Fault`` as Exchange sends one (``a:`` code, ``e:`` detail, ``t:MessageXml``)."""
    root = element(qname(SOAP, "Envelope"), nsmap={"s": SOAP})
    body = sub(root, qname(SOAP, "Body"))
    fault_el = sub(body, qname(SOAP, "Fault"))
    code_el = etree.SubElement(fault_el, "faultcode", nsmap={"a": TYPES})
    code_el.text = f"a:{code}"
    string_el = sub(fault_el, "faultstring", message)
    string_el.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    detail = sub(fault_el, "detail")
    rc = etree.SubElement(detail, qname(ERRORS, "ResponseCode"), nsmap={"e": ERRORS})
    rc.text = response_code or code
    msg = etree.SubElement(detail, qname(ERRORS, "Message"), nsmap={"e": ERRORS})
    msg.text = message
    if detail_values:
        xml = etree.SubElement(detail, t("MessageXml"), nsmap={"t": TYPES})
        for name, value in detail_values.items():
            sub(xml, t("Value"), value, Name=name)
    return root
