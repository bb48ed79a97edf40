"""Backups of the database (whole, or one tenant's schema), their verification and restore, and
the safe migration flow that relies on them (docs/operations.md, "Backups and migrations")."""
