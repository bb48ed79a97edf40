"""Business operations on sending domains. Views, API viewsets, job handlers and commands call
these and nothing else writes domains."""
