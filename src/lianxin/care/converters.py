"""URL converters shared by the apps' URL confs."""

from django.urls import register_converter
from django.urls.converters import IntConverter


class IdConverter(IntConverter):
    """A row id in a path: Django's `int` takes any number of digits, and a number too long for
    a 64-bit id made the database driver raise (a 500) instead of finding nothing (a 404)."""

    regex = "[0-9]{1,18}"


register_converter(IdConverter, "id")
