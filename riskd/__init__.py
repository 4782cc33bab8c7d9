"""riskd: a risk guardian for crypto trading accounts."""

__version__ = "0.1.0"
