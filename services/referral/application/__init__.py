"""The referral service's use cases (``ReferralApplication``): the API's, taking a Caller, and the worker's."""

from services.referral.application.app import ReferralApplication

__all__ = ["ReferralApplication"]
