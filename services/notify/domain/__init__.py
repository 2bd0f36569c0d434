"""The notify service's domain (pure: no I/O): what a notice may say and how it is signed and retried.

``notices`` (``NoticeFacts``, the only input of a notice, and the webhook body), ``templates`` (the notice in
Spanish or English), ``signature`` (the webhook HMAC and its reference verifier), ``retry`` (backoff with full
jitter, bounded). See docs/adr/0014-notify.md.
"""
