"""Staff forms. Limits come from the models so that the form and the column agree."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)

from portal.forms import CleanForm, normalized_email, options
from portal.models.case import DETAILS_MAX_CHARS, SHORT_TEXT_MAX
from portal.policy.abuse import CATEGORY_LABELS, INTENT_LABELS, Seriousness
from portal.policy.actions import RULES, CaseStatus, Decision
from portal.policy.appeals import OUTCOME_LABELS
from portal.policy.roles import PARTY_ROLES_STAFF_ADD
from portal.policy.routing import Team

REPLY_MAX_CHARS = 50_000


class LoginForm(CleanForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])
    code = StringField(
        "Code from your authenticator app", validators=[DataRequired(), Length(max=12)]
    )


class PasswordChangeForm(CleanForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=1000)]
    )
    new_password = PasswordField(
        "New password",
        validators=[
            DataRequired(),
            Length(min=12, max=1000, message="Use at least 12 characters."),
        ],
    )
    confirm_password = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("new_password", message="The two do not match.")],
    )


class ReplyForm(CleanForm):
    body = TextAreaField("Your reply", validators=[DataRequired(), Length(max=REPLY_MAX_CHARS)])
    in_reply_to = HiddenField()
    canned = SelectField("Start from a canned response", choices=options([]), validate_choice=False)


class NoteForm(CleanForm):
    body = TextAreaField(
        "Note for staff (never sent)", validators=[DataRequired(), Length(max=REPLY_MAX_CHARS)]
    )


class AssignForm(CleanForm):
    assignee = SelectField("Assignee", choices=options([]), validate_choice=False)


class StatusForm(CleanForm):
    status = SelectField("Status", choices=options([(s.value, s.value) for s in CaseStatus]))


class ClassifyForm(CleanForm):
    action = SelectField(
        "Action type",
        choices=options([("", "none")] + [(a.value, r.label) for a, r in RULES.items()]),
    )
    team = SelectField("Team", choices=options([(t.value, t.value) for t in Team]))
    confidential = BooleanField("Confidential: only the assignee and admins see it")


class PartyForm(CleanForm):
    address = EmailField("Address", validators=[DataRequired(), Length(max=320), normalized_email])
    role = SelectField(
        "Role",
        choices=options([(role.value, label) for role, label in PARTY_ROLES_STAFF_ADD.items()]),
    )


class DecisionForm(CleanForm):
    decision = SelectField("Decision", choices=options([(d.value, d.value) for d in Decision]))
    details = TextAreaField(
        "Reasons and details", validators=[DataRequired(), Length(max=DETAILS_MAX_CHARS)]
    )
    scope_location = StringField("Event ban location", validators=[Length(max=SHORT_TEXT_MAX)])
    scope_project = StringField("Event ban project", validators=[Length(max=SHORT_TEXT_MAX)])
    scope_until = DateField("Event ban end date", validators=[Optional()])
    part_of_global_ban = BooleanField("Part of (or led to) a global ban: not appealable")
    irrevocable = BooleanField("Irrevocable (an open-ended ban that is not goes to Trust & Safety)")


class ModificationForm(CleanForm):
    details = TextAreaField(
        "What changed", validators=[DataRequired(), Length(max=DETAILS_MAX_CHARS)]
    )
    substantial = BooleanField("Substantial, atypical modification (opens a new appeal window)")


class CannedResponseForm(CleanForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=SHORT_TEXT_MAX)])
    body = TextAreaField(
        "Text ({reference} and {requester_name} are filled in)",
        validators=[DataRequired(), Length(max=REPLY_MAX_CHARS)],
    )
    team = SelectField(
        "Team", choices=options([("", "every team")] + [(t.value, t.value) for t in Team])
    )


class AbuseMarkForm(CleanForm):
    category = SelectField(
        "What was abusive",
        choices=options([(c.value, label) for c, label in CATEGORY_LABELS.items()]),
    )
    seriousness = SelectField(
        "Seriousness", choices=options([(s.value, s.value) for s in Seriousness])
    )
    intent = SelectField(
        "Presumed intent",
        choices=options([(i.value, label) for i, label in INTENT_LABELS.items()]),
    )
    note = TextAreaField(
        "Note (for staff)", validators=[DataRequired(), Length(max=DETAILS_MAX_CHARS)]
    )
    message_id = HiddenField()


class WarningForm(CleanForm):
    text = TextAreaField("Warning text", validators=[DataRequired(), Length(max=DETAILS_MAX_CHARS)])
    mark_id = HiddenField(validators=[DataRequired()])


class LockoutForm(CleanForm):
    override_days = StringField("Another length, in days (optional)", validators=[Length(max=3)])
    override_reason = TextAreaField(
        "Why another length (required if you change it)", validators=[Length(max=DETAILS_MAX_CHARS)]
    )

    def validate_override_days(self, field: StringField) -> None:
        if field.data and not field.data.strip().isdigit():
            raise ValidationError("Give a whole number of days.")


class LiftForm(CleanForm):
    reason = TextAreaField(
        "Why lift it early", validators=[DataRequired(), Length(max=DETAILS_MAX_CHARS)]
    )


class AppealOutcomeForm(CleanForm):
    outcome = RadioField(
        "Outcome",
        choices=options([(outcome.value, label) for outcome, label in OUTCOME_LABELS.items()]),
        validators=[InputRequired("Choose the outcome.")],
    )
    reasons = TextAreaField(
        "Reasons (sent to the appellant)",
        validators=[
            DataRequired("Give the reasons: the appellant receives them."),
            Length(max=DETAILS_MAX_CHARS),
        ],
    )


class ReferAppealForm(CleanForm):
    """Only a CSRF token: the button says what it does."""


class ShareWithReviewersForm(CleanForm):
    shared = BooleanField("Let the case review committee read this whole case file")
