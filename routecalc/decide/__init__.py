"""Decisions on top of the estimate: which route to run (``optimize``) and how sure we can be of it."""
