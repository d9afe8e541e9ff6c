"""Public forms. Field names are a contract with integrators: do not rename them."""

from __future__ import annotations

from datetime import date

from wtforms import DateField, EmailField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from portal.forms import CleanForm, MaxWords, must_be_empty, normalized_email
from portal.models.case import (
    DETAILS_MAX_CHARS,
    SHORT_TEXT_MAX,
    SUMMARY_MAX_CHARS,
    URLS_MAX,
)
from portal.policy.actions import RULES, SUMMARY_MAX_WORDS, ActionType, PriorAttempts, rule_for
from portal.services.cases import RequestSubmission
from portal.text import parse_url_lines

ACTION_CHOICES = [SelectChoice(rule.action.value, rule.label) for rule in RULES.values()]


class URLListField(TextAreaField):
    """One URL per line. ``data`` keeps what was typed; ``urls`` holds the normalised list."""

    urls: list[str]

    def pre_validate(self, form: CleanForm) -> None:
        self.urls, problems = parse_url_lines(self.data, limit=URLS_MAX)
        if problems:
            raise ValidationError(" ".join(problems))


class PriorAttemptsRequired:
    """Where the policy expects local community processes first, ask for the links to them,
    unless the person explains why there were none. Never for child protection."""

    message = (
        "Give the links to your attempts through local community processes, "
        "or explain below why there were none."
    )

    def __call__(self, form: RequestForm, field: URLListField) -> None:
        action = form.selected_action()
        if action is None or rule_for(action).prior_attempts is not PriorAttempts.REQUIRED:
            return
        if not getattr(field, "urls", None) and not (form.no_prior_attempt_reason.data or ""):
            raise ValidationError(self.message)


class EventScopeRequired:
    """An event ban is limited by place, project or time: ask for at least one of them."""

    message = "Say where the ban should apply: a location, a project, or an end date."

    def __call__(self, form: RequestForm, field: StringField) -> None:
        action = form.selected_action()
        if action is None or not rule_for(action).event_scope:
            return
        if not (form.scope_location.data or form.scope_project.data or form.scope_until.data):
            raise ValidationError(self.message)


class RequestForm(CleanForm):
    action = RadioField(
        "Which action are you asking for?",
        choices=ACTION_CHOICES,
        validators=[InputRequired("Choose the action you are asking for.")],
    )
    summary = TextAreaField(
        "Summary of your reasons",
        validators=[
            DataRequired("Give a short summary of why you are asking."),
            Length(max=SUMMARY_MAX_CHARS),
        ],
    )
    evidence_urls = URLListField("Evidence (links, one per line)")
    prior_attempt_urls = URLListField(
        "Attempts through local community processes (links, one per line)",
        validators=[PriorAttemptsRequired()],
    )
    no_prior_attempt_reason = TextAreaField(
        "If there were no such attempts, why not?",
        validators=[Optional(), Length(max=DETAILS_MAX_CHARS)],
    )
    scope_location = StringField(
        "Location (city, country or region)",
        validators=[EventScopeRequired(), Length(max=SHORT_TEXT_MAX)],
    )
    scope_project = StringField(
        "Project (for example English Wikipedia, MediaWiki)",
        validators=[Optional(), Length(max=SHORT_TEXT_MAX)],
    )
    scope_until = DateField("Until (leave empty if open-ended)", validators=[Optional()])
    requester_name = StringField(
        "Your name or user name (optional)", validators=[Optional(), Length(max=SHORT_TEXT_MAX)]
    )
    requester_email = EmailField(
        "Your e-mail address",
        validators=[
            DataRequired("Give an e-mail address so that we can answer you."),
            Length(max=254),
            normalized_email,
        ],
    )
    details = TextAreaField(
        "Further details (optional)", validators=[Optional(), Length(max=DETAILS_MAX_CHARS)]
    )
    # Honeypot: hidden from people and from assistive technology, see request_form.html.
    website = StringField("Leave this field empty", validators=[must_be_empty])

    def selected_action(self) -> ActionType | None:
        try:
            return ActionType(self.action.data)
        except ValueError:
            return None

    def validate_summary(self, field: TextAreaField) -> None:
        action = self.selected_action()
        limit = rule_for(action).summary_max_words if action else SUMMARY_MAX_WORDS
        if limit is not None:
            MaxWords(limit)(self, field)

    def validate_scope_until(self, field: DateField) -> None:
        if field.data and field.data <= date.today():
            raise ValidationError("The end date must be in the future.")

    def to_submission(self) -> RequestSubmission:
        action = self.selected_action()
        if action is None:
            raise ValueError("to_submission() is only for a validated form")
        event = rule_for(action).event_scope
        return RequestSubmission(
            action=action,
            summary=self.summary.data.strip(),
            requester_email=self.requester_email.data,
            requester_name=(self.requester_name.data or "").strip() or None,
            details=(self.details.data or "").strip() or None,
            evidence_urls=self.evidence_urls.urls,
            prior_attempt_urls=self.prior_attempt_urls.urls,
            no_prior_attempt_reason=(self.no_prior_attempt_reason.data or "").strip() or None,
            scope_location=(self.scope_location.data or "").strip() or None if event else None,
            scope_project=(self.scope_project.data or "").strip() or None if event else None,
            scope_until=self.scope_until.data if event else None,
        )
