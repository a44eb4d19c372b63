"""Decisions on top of the estimate: which route to run (``optimize``), how sure the answer is (``uncertainty``)
and what a routing pattern buys (``whatif``)."""
