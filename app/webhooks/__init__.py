"""Webhooks: signed event deliveries to people's endpoints, per account and per training run."""
