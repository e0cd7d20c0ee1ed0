"""The form that creates an API key."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from app.apikeys.services import ACCESS_CHOICES, MAX_NAME_CHARS


class NewKeyForm(FlaskForm):
    """A name to recognise the key by, and what it may do."""

    name = StringField(
        "Key name",
        validators=[DataRequired(), Length(max=MAX_NAME_CHARS)],
        description="Where it is used, e.g. “laptop CLI” or “nightly training script”.",
    )
    access = SelectField(
        "Access",
        choices=list(ACCESS_CHOICES.items()),
        default="read write",
        description="Read only: list and download. Read and write: also upload and train.",
    )
