"""Errors that retrying cannot fix: bad data or a source that no longer matches its config.

Tasks turn these into failures without retries; every other exception (a database
that is down, a full disk) is left to Airflow's retries.
"""


class BadInput(RuntimeError):
    """The input is wrong; running again on the same input would fail the same way."""
