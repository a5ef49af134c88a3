"""Training of a use case's model: training sets, candidates, tracked runs, model cards (no Airflow imports)."""
