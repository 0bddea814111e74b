"""sso-bridge's shared signing layer: login tokens, secrets, redirect allow-lists, responses."""

__all__: list[str] = []
