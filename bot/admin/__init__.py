"""Operator actions, one module per subject, shared by the HTTP API and `memberbot admin`."""
