"""The ledger: what gradehook received, ran and reported, in SQLAlchemy tables."""
