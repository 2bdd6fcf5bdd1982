"""Shim for tools that build eggs with setup.py (scrapyd-deploy); the project is defined in pyproject.toml."""

from setuptools import setup

setup()
