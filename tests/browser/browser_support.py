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


def off_screen(page) -> list[str]:
    """Shown elements reaching past the viewport's right edge, and a page that scrolls sideways."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth, found = [];
        if (document.documentElement.scrollWidth > width)
            found.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + width);
        for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.width > 0 && r.height > 0 && !el.closest('.visually-hidden') && r.right > width + 1)
                found.push(el.tagName.toLowerCase() + '.' + el.className + ' ' + Math.round(r.right));
        }
        return found.slice(0, 10);
    }""")
