"""The referral service's domain (pure: no I/O): handoff lifecycle, the Referral aggregate, routing rules.

``handoff`` (the state machine), ``referral`` (needs, handoffs, the events they record), ``routing``
(``rank_candidates``), ``adjacency`` (Peru's department borders), ``deadlines`` (offer deadlines).
"""
