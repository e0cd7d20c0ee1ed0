"""Sign-up and sign-in forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional

from app.accounts.passwords import MAX_PASSWORD_LENGTH


class SignUpForm(FlaskForm):
    """A new account: name, e-mail, password, optional company and the 18+ confirmation."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField(
        "E-mail", validators=[DataRequired(), Length(max=254), Email(check_deliverability=False)]
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)],
        description="At least 10 characters; a passphrase works well.",
    )
    company = StringField("Company (optional)", validators=[Optional(), Length(max=120)])
    adult = BooleanField(
        "I am 18 or older",
        validators=[DataRequired("You must be 18 or older to use Attune.")],
    )


class SignInForm(FlaskForm):
    """E-mail and password."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        "Password", validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )


class GoogleSignUpForm(FlaskForm):
    """A new Google person confirms their name and that they are 18 or older."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    company = StringField("Company (optional)", validators=[Optional(), Length(max=120)])
    adult = BooleanField(
        "I am 18 or older",
        validators=[DataRequired("You must be 18 or older to use Attune.")],
    )


class ForgotPasswordForm(FlaskForm):
    """The address to send a reset link to."""

    email = EmailField(
        "E-mail", validators=[DataRequired(), Length(max=254), Email(check_deliverability=False)]
    )


class ResetPasswordForm(FlaskForm):
    """A new password, from a reset link."""

    password = PasswordField(
        "New password",
        validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)],
        description="At least 10 characters. Every session will be signed out.",
    )


class ProfileForm(FlaskForm):
    """Name and company."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    company = StringField("Company (optional)", validators=[Optional(), Length(max=120)])


class ChangeEmailForm(FlaskForm):
    """A new address, confirmed by a link sent to it."""

    email = EmailField(
        "New e-mail",
        validators=[DataRequired(), Length(max=254), Email(check_deliverability=False)],
    )
    password = PasswordField("Your password", validators=[Length(max=MAX_PASSWORD_LENGTH)])


class ChangePasswordForm(FlaskForm):
    """The current password and a new one."""

    current_password = PasswordField(
        "Current password", validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    password = PasswordField(
        "New password",
        validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)],
        description="At least 10 characters. Your other sessions will be signed out.",
    )
