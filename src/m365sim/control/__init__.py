"""The ``/_sim`` control API: not part of Microsoft's surface; tests and demos drive m365sim here."""
