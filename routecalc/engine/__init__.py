"""The two engines: closed-form expected values and a seeded Monte Carlo simulation of the same model."""

from routecalc.engine.ev import Metrics, expected_values
from routecalc.engine.mc import MonteCarlo, simulate

__all__ = ["Metrics", "MonteCarlo", "expected_values", "simulate"]
