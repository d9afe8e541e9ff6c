"""Page objects: what a person does on a page, in words, so tests read like their stories."""

from __future__ import annotations

from playwright.sync_api import Page


class RequestFormPage:
    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self) -> RequestFormPage:
        self.page.goto(f"{self.base_url}/requests/new")
        return self

    def choose_action(self, label: str) -> None:
        self.page.get_by_label(label, exact=True).check()

    def write_summary(self, text: str) -> None:
        self.page.get_by_label("Summary of your reasons").fill(text)

    def word_count_text(self) -> str:
        return self.page.locator("#summary-count").inner_text()

    def give_evidence(self, *urls: str) -> None:
        self.page.get_by_label("Evidence (links, one per line)").fill("\n".join(urls))

    def give_prior_attempts(self, *urls: str) -> None:
        self.page.get_by_label(
            "Attempts through local community processes (links, one per line)"
        ).fill("\n".join(urls))

    def give_email(self, address: str) -> None:
        self.page.get_by_label("Your e-mail address").fill(address)

    def send(self) -> None:
        self.page.get_by_role("button", name="Send request").click()

    def sees(self, text: str) -> bool:
        """Whether the person can see this exact heading or sentence right now."""
        return self.page.get_by_text(text, exact=True).is_visible()

    def error_beside(self, field: str) -> str:
        return self.page.locator(f"#{field}-error").inner_text()

    def reference(self) -> str:
        return self.page.locator(".reference").inner_text()


class StaffPages:
    """What a staff member does: sign in, open a case from the inbox, answer it."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def sign_in(self, email: str, password: str, code: str) -> None:
        self.page.goto(f"{self.base_url}/staff/login")
        self.page.get_by_label("E-mail address").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_label("Code from your authenticator app").fill(code)
        self.page.get_by_role("button", name="Sign in").click()

    def open_case(self, reference: str) -> None:
        self.page.get_by_role("link", name=reference).click()

    def reply(self, text: str) -> None:
        self.page.get_by_role("link", name="Reply to the requester").click()
        self.page.get_by_label("Your reply").fill(text)
        self.page.get_by_role("button", name="Send reply").click()

    def timeline_text(self) -> str:
        return self.page.locator(".timeline").inner_text()

    def heading(self) -> str:
        return self.page.get_by_role("heading", level=1).inner_text()


class AppealPages:
    """What an appellant does: fill in the appeal form, then confirm from the mailed link."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open_form(self) -> AppealPages:
        self.page.goto(f"{self.base_url}/appeals/new")
        return self

    def appeal(
        self,
        *,
        reference: str,
        email: str,
        role_label: str,
        reasons: str,
        files: list[str] | None = None,
    ) -> None:
        self.page.get_by_label("Reference of the case").fill(reference)
        self.page.get_by_label("Your e-mail address").fill(email)
        self.page.get_by_label(role_label).check()
        self.page.get_by_label("Why was the decision inappropriate?").fill(reasons)
        if files:
            self.page.get_by_label("Documents (optional)").set_input_files(files)
        self.page.get_by_role("button", name="Send appeal").click()

    def follow_link(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")

    def confirm(self) -> None:
        self.page.get_by_role("button", name="Confirm my appeal").click()

    def heading(self) -> str:
        return self.page.get_by_role("heading", level=1).inner_text()

    def error_beside(self, field: str) -> str:
        return self.page.locator(f"#{field}-error").inner_text()

    def reference(self) -> str:
        return self.page.locator(".reference").inner_text()
