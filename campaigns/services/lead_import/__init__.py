"""The CSV import job's work (docs/leads.md, "Import"): stream, validate, write in batches.

Reading and validation stream (memory stays flat whatever the file's size); each batch is then
written with a handful of set-based statements instead of one ORM object per row:

1. its valid rows, one per address (a repeated address within the batch is merged into the
   first, or skipped, by the duplicate policy), are COPied into a temporary staging table;
2. one DELETE ... RETURNING takes out the suppressed addresses and domains, with their reason;
3. one INSERT ... SELECT ... ON CONFLICT (email) creates the new leads and, by policy, merges
   into the existing ones (non-empty values win, custom fields merge, tags add up) or leaves
   them alone;
4. one INSERT ... SELECT adds the list memberships; the rows not imported are COPied into
   LeadImportError; the counts move.

All of it in one transaction, which checks last, under a lock on the import row, that
`processed` is where the batch starts: a re-run (a worker killed, the job re-queued) resumes
after the last committed batch, and two runs at once cannot both count a batch.

Reading, validation and the staging text run in a thread (`BatchReader`) ahead of the writes,
so Python and PostgreSQL work at once; and two connections write alternate batches at once
(the job's, and a second one in a thread), committing strictly in batch order (`_CommitOrder`):
`processed` only moves in order, so a crash leaves a prefix of whole batches, and a repeated
address in batch N+1 waits for batch N's commit and then finds its lead, as one writer would.

Modules: `job` (`run_import`: the run, its status and end), `reader` (the batches read, validated
and staged in a thread), `rows` (a row validated into a record), `writers` (the batches written,
two at a time in batch order), `sql` (the statements and the staging text).
"""

from __future__ import annotations

from campaigns.services.lead_import.job import run_import
from campaigns.services.lead_import.reader import (
    RAMP,
    Batch,
    BatchReader,
    batch_size,
    batch_sizes,
    prepare_batch,
)
from campaigns.services.lead_import.rows import CUSTOM, EMAIL, TAGS, Record, RowCleaner, _map_row
from campaigns.services.lead_import.sql import _stage_text
from campaigns.services.lead_import.writers import Counts

__all__ = [
    "CUSTOM",
    "EMAIL",
    "RAMP",
    "TAGS",
    "Batch",
    "BatchReader",
    "Counts",
    "Record",
    "RowCleaner",
    "_map_row",
    "_stage_text",
    "batch_size",
    "batch_sizes",
    "prepare_batch",
    "run_import",
]
