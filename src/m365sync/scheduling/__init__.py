"""Calendar Scheduling: booking links from a rep's real availability.

Meeting types and team links (``models``), the slot engine (``availability``, pure),
booking through Microsoft Graph and into the CRM (``service``), signed invitee links
(``tokens``), and recovery of bookings a stopped process left pending (``recovery``). The
public booking pages and the rep's and admin's pages are the web's
(``m365sync.web.pages.scheduling``); ``create_app`` mounts them with ``install_scheduling``.
"""
