"""Limits every HTTP door shares."""

MAX_BODY = 64 * 1024  # webhooks and the API refuse larger bodies with 413
