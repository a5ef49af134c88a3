"""The responsible gate: group metrics by sensitive attribute (``fairness``), exact explanations of
scores (``explain``) and behavioural tests of a trained model (``behaviour``). Plain functions of
scores and frames, no MLflow and no Airflow: the gate, training, inference and the monitor call them."""
