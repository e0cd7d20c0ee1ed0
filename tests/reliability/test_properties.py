"""Property tests for the validators every form and JSON call goes through: they never raise
anything but their own refusal, always say which field is wrong, and what they accept is
within range."""

from __future__ import annotations

import math
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, password_problem
from app.datasets.captions import caption_key
from app.datasets.limits import MAX_CAPTION_CHARS
from app.datasets.previews import check_choice
from app.datasets.services import DatasetError
from app.datasets.uploads import check_caption, clean_display_name
from app.trainings.families import FAMILIES
from app.trainings.params import FIELDS, MAX_PROMPT_CHARS, MAX_SAMPLE_PROMPTS, validate_params
from storage import InvalidKey, attachment_disposition
from storage.base import validate_key, validate_prefix

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Anything JSON (or a form) can carry, plus the floats that break naive range checks.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", " ", "1e3", "0x10", "nan", "inf", "-0", "12.0", "٣", "1_000"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
param_names = st.sampled_from([*FIELDS, "resolution", "sample_prompts", "junk", ""])
hostile_text = st.lists(
    st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from(["/", "\\", "..", ".", "\x00", "\u202e", "\u200b", "\r\n", "%2e%2e"]),
    max_size=120,
).map("".join)


@FAST
@given(
    family=st.sampled_from(sorted(FAMILIES)),
    raw=st.dictionaries(param_names, json_values, max_size=12),
)
def test_validate_params_never_raises_and_keeps_values_in_range(
    family: str, raw: dict[str, Any]
) -> None:
    values, errors = validate_params(family, raw)
    known = {*FIELDS, "resolution", "sample_prompts"}
    assert set(values) <= known and set(errors) <= known
    assert not set(values) & set(errors)
    assert all(isinstance(message, str) and message.strip() for message in errors.values())
    for name, value in values.items():
        if name in FIELDS:
            spec = FIELDS[name]
            assert not isinstance(value, bool) and isinstance(value, spec.kind)
            assert math.isfinite(value) and spec.low <= value <= spec.high
        elif name == "resolution":
            info = FAMILIES[family]
            assert info.min_resolution <= value <= info.max_resolution
            assert value % info.resolution_multiple == 0
        else:
            assert len(value) <= MAX_SAMPLE_PROMPTS  # [] means: the preset's prompts
            assert all(0 < len(prompt) <= MAX_PROMPT_CHARS for prompt in value)
    # Every field that was sent with something is either accepted or named in the errors.
    for name in known & set(raw):
        if raw[name] not in (None, ""):
            assert (name in values) != (name in errors), name


@FAST
@given(family=st.sampled_from(sorted(FAMILIES)), steps=st.integers(1, 20_000))
def test_in_range_numbers_are_accepted_as_numbers_or_text(family: str, steps: int) -> None:
    for raw in (steps, str(steps), float(steps)):
        values, errors = validate_params(family, {"steps": raw})
        assert errors == {} and values == {"steps": steps}


@FAST
@given(key=hostile_text)
def test_storage_keys_are_refused_or_safe(key: str) -> None:
    try:
        accepted = validate_key(key)
    except InvalidKey as exc:
        assert isinstance(exc, ValueError) and str(exc)
        return
    assert accepted == key
    assert not key.startswith("/") and "\\" not in key and not key.endswith("/")
    assert all(segment not in ("", ".", "..") for segment in key.split("/"))
    assert not any(unicodedata.category(ch) == "Cc" for ch in key)
    assert len(key.encode()) <= 1024


@FAST
@given(prefix=hostile_text)
def test_storage_prefixes_are_refused_or_safe(prefix: str) -> None:
    try:
        validate_prefix(prefix)
    except InvalidKey:
        return
    assert ".." not in prefix.split("/") and not prefix.startswith("/")


@FAST
@given(name=hostile_text)
def test_display_names_are_clean_and_idempotent(name: str) -> None:
    cleaned = clean_display_name(name)
    assert len(cleaned) <= 255
    assert not cleaned.startswith("/") and "\\" not in cleaned
    assert all(unicodedata.category(ch)[0] != "C" for ch in cleaned)
    if cleaned:
        assert ".." not in cleaned.split("/") and "." not in cleaned.split("/")
    assert clean_display_name(cleaned) == cleaned
    caption_key(name)  # pairing by name never raises either


@FAST
@given(filename=hostile_text)
def test_download_headers_cannot_be_split(filename: str) -> None:
    header = attachment_disposition(filename)
    assert header.startswith("attachment; filename=")
    assert "\r" not in header and "\n" not in header and "\x00" not in header
    header.encode("latin-1")  # a header value must be latin-1; this one is plain ASCII


@FAST
@given(caption=json_values | hostile_text | st.text(min_size=1990, max_size=2010))
def test_captions_are_text_of_at_most_2000_characters(caption: Any) -> None:
    try:
        accepted = check_caption(caption)
    except DatasetError as exc:
        assert str(exc)
        return
    assert accepted is None or (isinstance(accepted, str) and accepted == accepted.strip())
    assert accepted is None or 0 < len(accepted) <= MAX_CAPTION_CHARS


ENABLED = sorted(FAMILIES)[::2]  # a server that trains only some of the families


@FAST
@given(family=json_values | st.sampled_from(sorted(FAMILIES)), resolution=json_values)
def test_bucket_preview_choices_are_refused_or_in_range(family: Any, resolution: Any) -> None:
    try:
        info, value = check_choice(family, resolution, ENABLED)
    except DatasetError as exc:
        assert str(exc)
        return
    assert info.min_resolution <= value <= info.max_resolution
    assert value % info.resolution_multiple == 0


@FAST
@given(
    password=hostile_text | st.text(min_size=250, max_size=270),
    email=st.emails(),
    name=st.text(max_size=30),
)
def test_password_rule_never_raises_and_bounds_length(password: str, email: str, name: str) -> None:
    problem = password_problem(password, email=email, name=name)
    assert problem is None or (isinstance(problem, str) and problem.endswith("."))
    if problem is None:
        assert MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
        assert password.lower() != name.lower() or not name


@pytest.mark.parametrize(
    "password", ["password123", "aaaaaaaaaaaa", "short", "x" * 300, "adalovelace1!"]
)
def test_weak_passwords_get_a_reason(password: str) -> None:
    assert password_problem(password, email="adalovelace@example.com", name="Ada")


@FAST
@given(target=hostile_text | st.sampled_from(["//evil.example", "/\\evil", "https://evil", "/ok"]))
def test_sign_in_never_redirects_off_site(target: str) -> None:
    from flask import Flask

    from app.accounts.sign_in_routes import _safe_next

    app = Flask(__name__)
    app.add_url_rule("/dashboard", "pages.dashboard", lambda: "")
    with app.test_request_context():
        destination = _safe_next(target)
    assert destination.startswith("/") and not destination.startswith("//")
    assert "\\" not in destination and "://" not in destination.split("?")[0]


@FAST
@given(points=st.lists(st.integers(), max_size=6000), most=st.integers(1, 600))
def test_the_loss_curve_is_thinned_evenly_and_keeps_the_latest_point(
    points: list[int], most: int
) -> None:
    from app.trainings.telemetry import thin

    picked = thin(points, most)
    assert len(picked) <= most + 1
    if points:
        assert picked[0] == points[0] and picked[-1] == points[-1]
    if len(points) <= most:
        assert picked == points
