"""Fakes of outside services that riskd talks to, served on loopback for tests."""
