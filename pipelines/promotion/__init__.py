"""Promotion of a use case's model: the champion/challenger gate, its decision log, rollback and status."""
