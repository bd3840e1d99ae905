"""m365sync: sync Microsoft 365 / Exchange mailboxes with your CRM."""

__version__ = "0.1.0"
