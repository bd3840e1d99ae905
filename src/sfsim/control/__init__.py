"""The ``/_sim`` control API: not Salesforce's surface; tests and demos drive sfsim here."""
