"""Benchmarks that hold DESIGN §10's budgets: `python -m benchmarks.run` (see benchmarks/README.md)."""
