"""Where the heavy data steps run, for use cases that do not use the default (``engine: local``: pandas in the
task's own process).

- ``spark``: a Spark session from the ``mlops_spark`` connection (one per process), and the way rows come
  back to the driver; the stages' Spark steps are beside their local ones
  (``pipelines/features/spark_build.py``, ``pipelines/inference/spark_scoring.py``)
"""
