"""The getting-started checklist: the dashboard shows it, the welcome after sign-up names its
first step, so the two never disagree."""

from __future__ import annotations

# In order.
STEPS = ("Choose a plan", "Upload a dataset", "Start a run", "Download your LoRA")


def welcome_message() -> str:
    """What a new account is told first: the checklist's first step."""
    return f"Welcome to Attune. Your first step is under “Getting started”: {STEPS[0].lower()}."
