"""The ledger's Alembic revisions, one module each, applied in order by pipeline.ledger.migrate."""
