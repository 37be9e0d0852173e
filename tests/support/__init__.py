"""Helpers the end-to-end tests share: real processes on loopback ports."""
