"""Tests of the context service."""
