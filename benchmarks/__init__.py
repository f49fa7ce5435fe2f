"""What the template costs its users: `uv run python -m benchmarks` (see README.md)."""
