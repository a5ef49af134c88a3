"""Training, tracking, registration and promotion of a use case's model (no Airflow imports)."""
