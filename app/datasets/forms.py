"""Dataset forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from app.datasets.services import TRIGGER_PATTERN

TRIGGER_HELP = (
    "A rare word that will call up your subject, e.g. sks_cat. Training puts it in front of "
    "every caption that does not already contain it."
)


def _trigger_field() -> StringField:
    return StringField(
        "Trigger word",
        validators=[
            Optional(),
            Length(max=64),
            Regexp(TRIGGER_PATTERN, message="Use letters, digits, - and _ only."),
        ],
        description=TRIGGER_HELP,
    )


class DatasetForm(FlaskForm):
    """Name and trigger word of a new dataset."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    trigger_word = _trigger_field()


class DatasetSettingsForm(FlaskForm):
    """Rename a dataset, set its trigger word and caption template."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    trigger_word = _trigger_field()
    caption_template = TextAreaField(
        "Caption template",
        validators=[Optional(), Length(max=500)],
        description="Used for items without a caption; {trigger} becomes the trigger word, "
        "e.g. “a photo of {trigger}”.",
    )


class ReplaceForm(FlaskForm):
    """Find and replace text in every caption of a dataset."""

    find = StringField("Find", validators=[DataRequired(), Length(max=2000)])
    replace = StringField("Replace with", validators=[Optional(), Length(max=2000)])
