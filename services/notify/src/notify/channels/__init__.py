"""Outbound channels behind one interface: email, SMS and webhooks.

The in-app inbox is written in the same transaction as the event that causes it, so it needs no
sender: it is "delivered" when that transaction commits.
"""
