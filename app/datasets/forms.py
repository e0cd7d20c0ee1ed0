"""Dataset forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp


class DatasetForm(FlaskForm):
    """Name and trigger word of a dataset."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    trigger_word = StringField(
        "Trigger word",
        validators=[
            Optional(),
            Length(max=64),
            Regexp(r"^[\w-]+$", message="Use letters, digits, - and _ only."),
        ],
        description="A rare word that will call up your subject, e.g. sks_cat.",
    )
