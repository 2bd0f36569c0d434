"""Event payload catalogues and the error for events that can never be processed (no nameko, no kafka)."""

from services.core.events.codec import EventCatalogue
from services.core.events.errors import UnprocessableEvent

__all__ = ["EventCatalogue", "UnprocessableEvent"]
