"""Where tests leave files for people to look at: the git-ignored test-artifacts/ folder."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
