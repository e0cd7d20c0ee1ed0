"""The versioned public API, /api/v1: one blueprint, its operations in one module per resource."""

from __future__ import annotations

from app.api_v1 import account, datasets, trainings  # noqa: F401  (they add their routes to bp)
from app.api_v1.blueprint import bp

__all__ = ["bp"]
