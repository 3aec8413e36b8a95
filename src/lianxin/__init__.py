"""Lianxin (连心): watch over elderly people who live alone through their meter data."""

__version__ = "0.1.0"
