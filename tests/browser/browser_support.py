"""What the browser tests share: the password their users get, and logging in
through the real form."""
from __future__ import annotations

PASSWORD = "browser-pass-phrase-long"


def log_in(page, base: str, username: str) -> None:
    """Log in through the login page and wait until it has let the user in."""
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
