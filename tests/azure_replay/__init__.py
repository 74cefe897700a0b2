"""A replay of Azure ML's REST API for tests: see ``service`` and ``wire``."""
