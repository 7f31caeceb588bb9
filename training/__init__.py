"""Training jobs: next-step models, MLflow tracking and registry, offline evaluation."""
