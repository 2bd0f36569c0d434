"""Referral network services: intake, referral, audit, notify, and the shared core."""
