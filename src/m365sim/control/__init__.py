"""The ``/_sim`` control API: not Microsoft's surface; tests and demos drive m365sim here."""
