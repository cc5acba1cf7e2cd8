"""Customer-churn prediction as a reproducible DVC pipeline."""
