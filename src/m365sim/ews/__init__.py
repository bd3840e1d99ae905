"""An Exchange Server behind each tenant that has one: Exchange Web Services and Autodiscover.

Layout (moto style): ``models`` (the organization: flavour, build, roles), ``auth``
(IIS authentication: Basic and NTLM), ``calls`` (one request's access rules),
``mailbox`` (the EWS folder tree over the stores Graph serves), ``items`` and ``sync``
(rendering, parsing, sync states), ``operations`` (the SOAP operations), ``autodiscover``,
``responses``/``urls`` (routes) and ``control`` (``/_sim`` and the seed section).
The errors are in ``exceptions``; what differs from Exchange is in each module's docstring
and in ``docs/m365sim/ews.md``.
"""

from m365sim.ews.sync import install

__all__ = ["install"]
