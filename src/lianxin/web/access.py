"""Kept so views written against `lianxin.web.access.require` keep working: the role check
lives beside the roles, in lianxin.care.roles."""

from lianxin.care.roles import require

__all__ = ["require"]
