"""Eval data: reading per-prompt eval results (``evals``), calibrating a worksheet from them (``calibrate``) and
router-research metrics on them (``metrics``).

Polars (the columnar engine) is imported only inside :func:`routecalc.data.evals.read_evals`.
"""
