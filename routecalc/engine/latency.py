"""Answer-latency laws for the expected-value engine: deadlines and hedged requests need more than the mean.

An answer takes ``L = A + y B`` seconds: ``A`` (time to first token, or the whole end-to-end latency) is
lognormal or fixed, ``B`` (seconds per output token) lognormal, fixed or absent, ``y`` the request's output
tokens (fixed within an expected-value row: rows carry quadrature nodes of ``y`` when these are needed). Given
``B``, ``A`` has closed forms:

* ``P(A <= u) = Phi((ln u - mu) / sigma)``;
* ``E[A; A <= u] = e^(mu + sigma^2/2) Phi((ln u - mu - sigma^2) / sigma)`` (the partial expectation),

and ``B`` is integrated by Gauss-Hermite quadrature (``B_NODES`` nodes; one node when it is fixed). A deadline
``d`` then needs ``P(L > d)`` and ``E[L; L <= d]``; a hedged pair needs ``P(L_a <= L_b)`` and ``E[min(L_a, L_b)]``,
taken over ``L_a`` by Gauss-Hermite nodes in ``ln A`` (``A_NODES``) with ``L_b``'s closed forms inside. The
tests compare these with adaptive quadrature and with Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

A_NODES = 48
B_NODES = 16
Z_LO = -8.5  # the B integral starts here: P(Z < -8.5) = 1e-17
PANELS, PANEL_NODES = 16, 8  # composite Gauss-Legendre for the B integral up to a cut


def _ndtr(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)


def _panels() -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes on (0, 1) (``PANELS`` panels of ``PANEL_NODES``) and their weights."""
    x, w = np.polynomial.legendre.leggauss(PANEL_NODES)
    lo = np.arange(PANELS) / PANELS
    nodes = (lo[:, None] + (x[None, :] + 1) / (2 * PANELS)).ravel()
    return nodes, np.tile(w / (2 * PANELS), PANELS)


def _gh(n: int) -> tuple[np.ndarray, np.ndarray]:
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / w.sum()


def _cdf_a(u: np.ndarray, mu: np.ndarray, sigma: np.ndarray, strict: bool = False) -> np.ndarray:
    """``P(A <= u)`` (``P(A < u)`` if ``strict``: it differs only for a fixed ``A``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.log(np.maximum(u, 1e-300)) - mu) / np.where(sigma > 0, sigma, 1.0)
        fixed = np.exp(mu)
        point = (fixed < u) if strict else (fixed <= u)
        out = np.where(sigma > 0, _ndtr(z), point)
    return np.where(u > 0, out, 0.0)


def _partial_a(u: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``E[A; A <= u]``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.where(sigma > 0, sigma, 1.0)
        z = (np.log(np.maximum(u, 1e-300)) - mu - sigma**2) / s
        mean = np.exp(mu + sigma**2 / 2)
        out = np.where(sigma > 0, mean * _ndtr(z), np.exp(mu) * (np.exp(mu) <= u))
    return np.where(u > 0, out, 0.0)


@dataclass(frozen=True, eq=False)
class LatencyLaw:
    """``L = A + y B`` per element of broadcastable arrays (``A``, ``B`` parameters with a trailing axis of 1).

    With a random ``B``, ``P(L <= t) = integral over B < t / y of P(A <= t - y B)``: composite Gauss-Legendre
    in ``z = (ln B - mu_B) / sigma_B`` up to that cut (128 nodes), which stays accurate where the integrand drops
    to 0 at the cut (a Gauss-Hermite rule over all of ``B`` does not: 1 pp off).
    """

    a_mu: np.ndarray
    a_sigma: np.ndarray
    b_mu: np.ndarray
    b_sigma: np.ndarray
    y: np.ndarray

    @classmethod
    def of(
        cls, a_mu: np.ndarray, a_sigma: np.ndarray, b_mu: np.ndarray, b_sigma: np.ndarray, y: np.ndarray
    ) -> LatencyLaw:
        t = lambda v: np.asarray(v, dtype=float)[..., None]
        return cls(t(a_mu), t(a_sigma), t(b_mu), t(b_sigma), t(y))

    @property
    def random_b(self) -> bool:
        return bool(np.any(self.b_sigma > 0))

    def _yb_nodes(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values of ``y B`` and weights for integrating over ``B`` below ``t`` (fixed ``B``: one node)."""
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if not self.random_b:
                yb = np.nan_to_num(self.y * np.exp(self.b_mu))
                return np.broadcast_to(yb, np.broadcast_shapes(yb.shape, t.shape)), np.ones(1)
            s = np.where(self.b_sigma > 0, self.b_sigma, 1.0)
            cut = (np.log(np.maximum(t / np.maximum(self.y, 1e-300), 1e-300)) - self.b_mu) / s  # y B < t  <=>  z < cut
            hi = np.clip(np.where(t > 0, cut, Z_LO), Z_LO, -Z_LO)
            x, w = _panels()
            z = Z_LO + (hi - Z_LO) * x  # nodes on (Z_LO, hi), per element
            weight = (hi - Z_LO) * w * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
            yb = self.y * np.exp(self.b_mu + self.b_sigma * z)
            fixed = np.where(np.arange(x.size) == 0, 1.0, 0.0)
            yb = np.where(self.b_sigma > 0, yb, self.y * np.exp(self.b_mu))
            weight = np.where(self.b_sigma > 0, weight, fixed)
            return np.nan_to_num(yb), weight

    def cdf(self, t: np.ndarray, strict: bool = False) -> np.ndarray:
        """``P(L <= t)`` (``P(L < t)`` if ``strict``)."""
        t = np.asarray(t, dtype=float)[..., None]
        yb, w = self._yb_nodes(t)
        return (_cdf_a(t - yb, self.a_mu, self.a_sigma, strict) * w).sum(-1)

    def partial(self, t: np.ndarray) -> np.ndarray:
        """``E[L; L <= t]``."""
        t = np.asarray(t, dtype=float)[..., None]
        yb, w = self._yb_nodes(t)
        u = t - yb
        return ((_partial_a(u, self.a_mu, self.a_sigma) + yb * _cdf_a(u, self.a_mu, self.a_sigma)) * w).sum(-1)

    def mean(self) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (
                np.exp(self.a_mu + self.a_sigma**2 / 2)
                + np.nan_to_num(self.y * np.exp(self.b_mu + self.b_sigma**2 / 2))
            )[..., 0]

    def capped(self, t: np.ndarray) -> np.ndarray:
        """``E[min(L, t)] = E[L; L <= t] + t P(L > t)``."""
        return self.partial(t) + t * (1 - self.cdf(t))

    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature values of ``L`` (trailing axis) and their weights, for expectations over ``L``
        (Gauss-Hermite in ``ln A`` and in ``ln B``: smooth integrands)."""
        za, wa = _gh(A_NODES) if bool(np.any(self.a_sigma > 0)) else (np.zeros(1), np.ones(1))
        zb, wb = _gh(B_NODES) if self.random_b else (np.zeros(1), np.ones(1))
        a = np.exp(self.a_mu + self.a_sigma * za)  # (..., A)
        with np.errstate(over="ignore"):
            yb = np.nan_to_num(self.y * np.exp(self.b_mu + self.b_sigma * zb))  # (..., B)
        values = a[..., :, None] + yb[..., None, :]
        flat = values.reshape(*values.shape[:-2], -1)
        return flat, np.broadcast_to((wa[:, None] * wb[None, :]).ravel(), flat.shape)


def first_of_two(a: LatencyLaw, b: LatencyLaw) -> tuple[np.ndarray, np.ndarray]:
    """``P(L_a <= L_b)`` and ``E[min(L_a, L_b)]`` for independent answer latencies."""
    values, weights = a.nodes()  # (..., N)
    bb = LatencyLaw(*(v[..., None, :] for v in (b.a_mu, b.a_sigma, b.b_mu, b.b_sigma, b.y)))  # evaluated at N points
    a_wins = ((1 - bb.cdf(values, strict=True)) * weights).sum(-1)  # P(L_b >= v)
    minimum = ((bb.partial(values) + values * (1 - bb.cdf(values))) * weights).sum(-1)
    return a_wins, minimum


def unique_apply(fn, key: np.ndarray, arrays: tuple[np.ndarray, ...]):  # type: ignore[no-untyped-def]
    """``fn(*arrays)`` computed once per distinct ``key`` (an integer array: equal keys, equal inputs) and spread
    back to ``key``'s shape.

    Latency laws depend on a few parameters (model, output tokens, deadline) shared by many engine rows (outcome
    states, segments, lanes): evaluating each distinct combination once keeps the quadrature cheap.
    """
    shape = key.shape
    _, first, inverse = np.unique(key.ravel(), return_index=True, return_inverse=True)
    picked = [np.broadcast_to(a, shape).ravel()[first] for a in arrays]
    out = fn(*picked)
    inverse = inverse.ravel()
    if isinstance(out, tuple):
        return tuple(np.asarray(o)[inverse].reshape(shape) for o in out)
    return np.asarray(out)[inverse].reshape(shape)
