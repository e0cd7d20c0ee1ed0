"""The new-run form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional


class NewRunForm(FlaskForm):
    """Dataset, base model and the main training parameters, each within its range."""

    name = StringField("Run name", validators=[Optional(), Length(max=120)])
    dataset_id = SelectField("Dataset", coerce=int, validators=[DataRequired()])
    family = SelectField("Base model", validators=[DataRequired()])
    steps = IntegerField("Steps", default=50, validators=[NumberRange(1, 20000)])
    rank = IntegerField("LoRA rank", default=8, validators=[NumberRange(1, 256)])
    learning_rate = DecimalField(
        "Learning rate", default=1e-4, places=None, validators=[NumberRange(1e-7, 1e-2)]
    )
    resolution = IntegerField("Resolution", validators=[Optional(), NumberRange(32, 2048)])
