"""Form plumbing shared by every blueprint: text cleaning on every field, and the honeypot."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, Form, SelectChoice, StringField
from wtforms.validators import ValidationError

from portal.addresses import EmailNotValidError, normalize_address
from portal.text import clean_text


class CleanForm(FlaskForm):
    """A form whose text fields drop control characters and normalise Unicode on the way in."""

    class Meta:
        def bind_field(self, form: Form, unbound_field: Any, options: dict[str, Any]) -> Field:
            if issubclass(unbound_field.field_class, StringField):
                filters = unbound_field.kwargs.get("filters", ())
                options["filters"] = (clean_text, *filters)
            return unbound_field.bind(form=form, **options)


def options(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """(value, label) pairs as the choices WTForms 3.3 expects."""
    return [SelectChoice(value, label) for value, label in pairs]


def must_be_empty(form: Form, field: Field) -> None:
    """Honeypot: people never see this field, form-filling robots fill it in."""
    if field.data:
        raise ValidationError(
            "This looked like an automated submission. If you are a person, please send it again."
        )


def normalized_email(form: Form, field: Field) -> None:
    """An address as email-validator normalises it (syntax only), or its message to the
    person who typed it; the field keeps the normalised form."""
    try:
        field.data = normalize_address(field.data or "")
    except EmailNotValidError as exc:
        raise ValidationError(str(exc)) from exc


class MaxWords:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, form: Form, field: Field) -> None:
        count = len((field.data or "").split())
        if count > self.limit:
            raise ValidationError(
                f"Keep this to {self.limit} words or fewer (it has {count}); "
                "put the rest under further details."
            )
