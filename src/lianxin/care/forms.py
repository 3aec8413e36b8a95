"""Form fields and the 400 answer shared by every app's views: web input is read through Django
forms, and what a form refuses is answered with a message in the user's language, never a 500."""

from django import forms
from django.http import JsonResponse
from django.shortcuts import render

# Row ids are 64-bit integers: a larger number cannot name a row, and the database driver
# would refuse it rather than find nothing.
ID_MAX = 2**63 - 1
# Free text a person types: a note, a request, details of an event. Long enough for a real
# account of a visit, short enough that a paste of a whole document is refused.
TEXT_MAX = 2000


class IdField(forms.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)


def text_field(label, *, required=False, max_length=TEXT_MAX, **kwargs):
    """A CharField (which refuses NUL characters) with a length cap."""
    return forms.CharField(
        label=label, required=required, max_length=max_length, strip=True, **kwargs
    )


def errors_text(form) -> str:
    """The form's errors as one line: 'Field: message' for each."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        for error in errors:
            parts.append(f"{label}: {error}" if label else str(error))
    return " ".join(parts)


def bad_request(request, form, *, json=False):
    message = errors_text(form)
    if json:
        return JsonResponse({"error": message}, status=400)
    return render(request, "400.html", {"message": message}, status=400)
