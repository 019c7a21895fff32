"""Gettext catalogs (messages.pot and <locale>/LC_MESSAGES/messages.po), shipped as package data."""
