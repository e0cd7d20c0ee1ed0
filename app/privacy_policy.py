"""The privacy policy's version and the retention periods it promises.

Bump POLICY_VERSION (and POLICY_DATE) with every material change to templates/privacy/policy.html:
signed-in people who accepted an older version then see a notice until they acknowledge it.
Accounts record the version people accept and the deletion dates follow these periods, so the
policy's figures sit below every feature package.
"""

from __future__ import annotations

from datetime import date, timedelta

POLICY_VERSION = "1.0"
POLICY_DATE = date(2026, 11, 23)

# After a subscription ends (Stripe's ended_at); for people who never subscribed the clock
# starts when the account was created.
MEDIA_RETENTION = timedelta(days=30)  # uploaded datasets and generated images/videos
LORA_RETENTION = timedelta(days=90)  # trained LoRA files and checkpoints
WARNING_DAYS = (7, 1)  # e-mails before each scheduled deletion
EXPORT_RETENTION = timedelta(days=7)  # how long a finished export stays downloadable
