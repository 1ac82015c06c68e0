"""Test kit for polydiff and its plugins: analytic oracles to check samplers and editing against."""
from .oracle import GaussianMixture

__all__ = ["GaussianMixture"]
