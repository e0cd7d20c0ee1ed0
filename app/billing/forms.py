"""Billing forms: choosing a plan, and the bare CSRF-protected action buttons."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import DataRequired, Length, Regexp


class PlanForm(FlaskForm):
    """A plan to buy or activate; `attempt` makes a double-submitted form one Checkout."""

    plan = HiddenField("Plan", validators=[DataRequired("Choose a plan."), Length(max=40)])
    attempt = HiddenField(
        "Attempt",
        validators=[
            DataRequired("Reload the page and try again."),
            Regexp(r"^[A-Za-z0-9_-]{8,64}$", message="Reload the page and try again."),
        ],
    )


class ActionForm(FlaskForm):
    """A button that changes the subscription (cancel, reactivate, portal): CSRF only."""
