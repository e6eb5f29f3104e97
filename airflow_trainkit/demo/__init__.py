"""The demo: a churn-like dataset generator and the runner behind the README's demo command."""
