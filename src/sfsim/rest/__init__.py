"""The REST API (``/services/data``): versions, describe, sObject rows, upserts, SOQL,
sObject Collections, composite, change polling and limits."""
