"""Reaching people who are not at the screen: channels, the outbox and its worker, escalation
policies, the resident's and the family's one-time links, maintenance silences, the shift page.

The public entry points for other apps are in lianxin.notify.service: `enqueue_system(...)` for
events that are not a household alert (a stopped monitor, a silent feed).
"""
