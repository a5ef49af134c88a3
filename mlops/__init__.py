"""The `mlops` command line and the Airflow administration it needs.

`pipelines/` never imports Airflow; this package is where the command line
talks to Airflow's metadata database (migrations, connections) and runs DAGs
in-process for the demo.
"""
