"""The new-run form. Numbers arrive as text and are checked by app.trainings.params."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.trainings.params import CHOICE_LABELS, CHOICES, FIELDS


class NewRunForm(FlaskForm):
    """Dataset, base model, preset and the advanced parameters (empty = the preset's value)."""

    name = StringField("Run name", validators=[Optional(), Length(max=120)])
    dataset_id = SelectField("Dataset", coerce=int, validators=[DataRequired()])
    family = SelectField("Base model", validators=[DataRequired()])
    preset = SelectField("Preset", validators=[DataRequired()])
    start_from = SelectField(
        "Start from",
        description="A finished run's LoRA to go on from, with this run's own data and "
        "settings (its rank is kept); or a fresh LoRA.",
        validate_choice=False,  # checked by app.trainings.services, with the form's message
    )
    steps = StringField(FIELDS["steps"].label)
    rank = StringField(FIELDS["rank"].label)
    alpha = StringField(FIELDS["alpha"].label)
    learning_rate = StringField(FIELDS["learning_rate"].label)
    resolution = StringField("Resolution")
    batch_size = StringField(FIELDS["batch_size"].label)
    seed = StringField(FIELDS["seed"].label)
    caption_dropout = StringField(FIELDS["caption_dropout"].label)
    checkpoint_every = StringField(FIELDS["checkpoint_every"].label)
    sample_every = StringField(FIELDS["sample_every"].label)
    save_precision = SelectField(
        CHOICE_LABELS["save_precision"],
        choices=[("", "The preset's (bf16)"), *CHOICES["save_precision"].items()],
        validate_choice=False,  # checked by app.trainings.params, with the form's message
    )
    sample_prompts = TextAreaField("Sample prompts (one per line)")

    ADVANCED = (
        "steps", "rank", "alpha", "learning_rate", "resolution", "batch_size", "seed",
        "caption_dropout", "checkpoint_every", "sample_every", "save_precision", "sample_prompts",
    )  # fmt: skip

    def params(self) -> dict[str, object]:
        """The advanced fields as sent."""
        return {name: getattr(self, name).data for name in self.ADVANCED}
