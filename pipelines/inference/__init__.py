"""Batch inference: pinned model, chunked scoring, idempotent predictions (no Airflow imports)."""
