"""The add-endpoint form. The URL's real checks (https, public address) are in services."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.webhooks.models import EVENT_TYPES, MAX_URL_LENGTH

EVENT_LABELS = {
    "training.start": "A run's attempt started (training.start)",
    "training.progress": "Progress while training (training.progress, at most every few seconds)",
    "training.completed": "A run succeeded, failed or was cancelled (training.completed)",
}


class EndpointForm(FlaskForm):
    """URL, a description for the person, and the event types to receive."""

    url = StringField(
        "Endpoint URL",
        validators=[DataRequired(), Length(max=MAX_URL_LENGTH)],
        description="An https:// address on the public internet that accepts POST requests.",
    )
    description = StringField("Description (optional)", validators=[Optional(), Length(max=200)])
    event_types = SelectMultipleField(
        "Events",
        choices=[(event, EVENT_LABELS[event]) for event in EVENT_TYPES],
        default=list(EVENT_TYPES),
        validate_choice=False,  # services.check_event_types gives the message
    )
