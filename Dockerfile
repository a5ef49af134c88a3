# The image of the server profile (docker-compose.yaml): Airflow's official image
# with this project's locked dependencies and its code. The requirements file is
# exported from uv.lock (`make requirements`; a test checks it is current), so the
# image runs exactly the versions the tests ran, not _PIP_ADDITIONAL_REQUIREMENTS.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11

# The state volume is mounted here; owned by the image's user so every service can write it.
USER root
RUN mkdir -p /opt/mlops/var && chown -R airflow:0 /opt/mlops
USER airflow

COPY --chown=airflow:0 docker/requirements.txt /opt/mlops/docker/requirements.txt
RUN pip install --no-cache-dir --require-hashes -r /opt/mlops/docker/requirements.txt

COPY --chown=airflow:0 . /opt/mlops
RUN pip install --no-cache-dir --no-deps /opt/mlops

WORKDIR /opt/mlops
ENV MLOPS_HOME=/opt/mlops/var \
    AIRFLOW_HOME=/opt/mlops/var/airflow \
    PYTHONPATH=/opt/mlops
