"""The tenant-scoped base of the REST API: who calls (a member's session or an API key), what
their role lets them do, and which rows they see. Every app's viewsets build on it; the core's
`penguinmails.api` keeps what knows no tenant (errors, pagination, parsers, throttling, schema)."""
