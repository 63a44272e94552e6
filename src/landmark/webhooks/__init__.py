"""Webhooks: subscriptions in several dialects, fan-out of the outbox, and reliable delivery.

Importing the package registers the dialects and the engine's worker service.
"""

from landmark.webhooks import engine, leanix, xurrent  # noqa: F401
