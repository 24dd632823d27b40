"""Legato: a self-hostable cloud-telephony engine."""

__version__ = "0.1.0"
