"""Leads, lists, suppressions and CSV imports (docs/leads.md).

Every function runs in the tenant's schema (dashboard and API on the tenant's host, the import
job through the queue runner, commands inside `schema_context`). Writes are atomic and audited.

Two write paths, one set of rules. Leads given one at a time or in a bulk API call go through
`writes._write_batch` (ORM rows, created, updated or skipped); a CSV import goes through the
set-based importer in `campaigns/services/lead_import/` (COPY into staging, one upsert per batch).
Both validate with the same `clean_lead`/`normalize_email` rules, store an address lower-cased and
unique (one lead per mailbox whatever the case) and never create or update a suppressed address
(or domain).

An import is a `LeadImport` plus the job `leads.import`: the job streams the file in batches of
`LEAD_IMPORT_BATCH_SIZE` (docs/leads.md); each batch commits its leads, its failed rows
and the counts together, under a lock on the import row that checks `processed` is still where
this run left it. So a re-run (a worker killed, the job re-queued) resumes after the last
committed batch, and two runs at once cannot both count a batch.

Modules: `validation` (a lead's values checked: `clean_lead`, `normalize_email`...), `mx` (the
domain's mail host check), `reads` (`list_leads`, `filter_leads`, `access_*`), `writes`
(`create_leads`, `update_lead`, `delete_lead`, `create_list`, `add_suppression`), `export`
(`export_csv`, `import_errors_csv`), `imports` (`create_import`, `start_import`).
"""

from __future__ import annotations

from campaigns.services.leads.export import (
    EXPORT_COLUMNS,
    export_csv,
    import_errors_csv,
)
from campaigns.services.leads.imports import (
    IMPORT_TASK,
    MAX_UPLOAD_BYTES,
    ImportTakenOver,
    create_import,
    start_import,
)
from campaigns.services.leads.mx import (
    MxChecker,
)
from campaigns.services.leads.reads import (
    _in_schema,
    access_import,
    access_lead,
    all_tags,
    filter_leads,
    list_leads,
)
from campaigns.services.leads.validation import (
    DISPOSABLE_DOMAINS,
    MAX_CUSTOM_FIELDS,
    MAX_CUSTOM_VALUE,
    MAX_TAGS,
    ROLE_LOCAL_PARTS,
    TEXT_FIELDS,
    LeadInput,
    _reason,
    _time_zones,
    allows_test_domains,
    clean_lead,
    normalize_email,
    normalize_tags,
    plain_email,
    validate_timezone,
)
from campaigns.services.leads.writes import (
    BULK_LIMIT,
    BulkResult,
    Outcome,
    RowOutcome,
    add_suppression,
    create_leads,
    create_list,
    delete_lead,
    suppressed_among,
    update_lead,
)

__all__ = [
    "BULK_LIMIT",
    "BulkResult",
    "DISPOSABLE_DOMAINS",
    "EXPORT_COLUMNS",
    "IMPORT_TASK",
    "ImportTakenOver",
    "LeadInput",
    "MAX_CUSTOM_FIELDS",
    "MAX_CUSTOM_VALUE",
    "MAX_TAGS",
    "MAX_UPLOAD_BYTES",
    "MxChecker",
    "Outcome",
    "RowOutcome",
    "ROLE_LOCAL_PARTS",
    "TEXT_FIELDS",
    "_in_schema",
    "_reason",
    "_time_zones",
    "access_import",
    "access_lead",
    "add_suppression",
    "all_tags",
    "allows_test_domains",
    "clean_lead",
    "create_import",
    "create_leads",
    "create_list",
    "delete_lead",
    "export_csv",
    "filter_leads",
    "import_errors_csv",
    "list_leads",
    "normalize_email",
    "normalize_tags",
    "plain_email",
    "start_import",
    "suppressed_among",
    "update_lead",
    "validate_timezone",
]
