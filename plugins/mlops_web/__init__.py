"""The web pages of the `mlops` plugin (plugins/mlops_plugin.py), mounted at ``/mlops`` on Airflow's
API server. Not a plugin module itself: ``plugins/.airflowignore`` keeps Airflow from loading it."""
