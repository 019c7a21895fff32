"""Persistence: typed models, the ledger and other repositories, the cache, migrations."""
