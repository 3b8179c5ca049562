"""Screenshots of every Arena page at a laptop size (1366x768) and a phone size (390x844),
for reviewing the layout by eye.

Starts the web app on a loopback port with the built-in demo models and a temporary data
directory, drives headless Chromium through the pages (battle after the answers, battle
after the vote, side by side, direct chat, leaderboard, about; the battle again in Spanish,
as a browser set to Spanish gets it) and saves one PNG per page and size: what the screen
shows at that moment, not the whole page (add --full-page for those too). Everything it
starts (the server thread, Chromium) ends with it.

    python3 scripts/screenshots.py OUT_DIR [--chromium /usr/bin/chromium] [--full-page]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SIZES = {"laptop": (1366, 768), "phone": (390, 844)}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Demo models write 40-160 words at 30 words a second; a long prompt makes no difference.
PROMPT = "Write a long, detailed essay about rivers, mountains and the sea, with lists."
ANSWER_TIMEOUT_MS = 60_000


@contextlib.contextmanager
def serve(data_dir: Path) -> Iterator[str]:
    """The web app with the embedded default registry (demo models) under uvicorn, in a
    thread; stopped and joined on exit."""
    import uvicorn

    from arena.config import Settings
    from arena.web.app import create_web_app

    settings = Settings(data_dir=data_dir, secret_key="screenshots")
    app = create_web_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def send_and_wait(page: Any, sides: int) -> None:
    """Send the prompt and wait until every side's answer has ended (votes enabled)."""
    page.locator("#prompt").fill(PROMPT)
    page.locator("#prompt").press("Enter")
    page.wait_for_function(
        f"""() => document.querySelectorAll('.log .msg-assistant:not(.streaming)').length >= {sides}
             && !document.querySelector('#votebar button[data-vote]').disabled""",
        timeout=ANSWER_TIMEOUT_MS,
    )


def battle(page: Any, url: str) -> None:
    page.goto(url + "/")
    send_and_wait(page, 2)


def vote(page: Any, url: str) -> None:
    page.keyboard.press("1")  # the shortcut for "A is better"
    page.locator("#vote-reveal").wait_for(state="visible")


def side_by_side(page: Any, url: str) -> None:
    page.goto(url + "/side-by-side")
    send_and_wait(page, 2)


def direct(page: Any, url: str) -> None:
    page.goto(url + "/direct")
    send_and_wait(page, 1)


def leaderboard(page: Any, url: str) -> None:
    page.goto(url + "/leaderboard")
    page.wait_for_load_state("networkidle")


def about(page: Any, url: str) -> None:
    page.goto(url + "/about")


# In order: "battle-voted" continues on the page "battle" left.
STEPS: list[tuple[str, Callable[[Any, str], None]]] = [
    ("battle-answered", battle),
    ("battle-voted", vote),
    ("side-by-side", side_by_side),
    ("direct", direct),
    ("leaderboard", leaderboard),
    ("about", about),
]
# The same battle for a browser whose language is Spanish (saved as NAME-es-SIZE.png).
SPANISH_STEPS = STEPS[:2]


def take(url: str, out: Path, chromium: str | None, full_page: bool) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            runs = [("en-US", "", STEPS), ("es-ES", "-es", SPANISH_STEPS)]
            for size, (width, height) in SIZES.items():
                for locale, suffix, steps in runs:
                    context = browser.new_context(
                        viewport={"width": width, "height": height}, locale=locale
                    )
                    page = context.new_page()
                    page.set_default_timeout(ANSWER_TIMEOUT_MS)
                    for name, step in steps:
                        step(page, url)
                        path = out / f"{name}{suffix}-{size}.png"
                        page.screenshot(path=str(path))
                        saved.append(path)
                        if full_page:
                            path = out / f"{name}{suffix}-{size}-full.png"
                            page.screenshot(path=str(path), full_page=True)
                            saved.append(path)
                    context.close()
        finally:
            browser.close()
    return saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files (created)")
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or None,
        help="Chromium to drive (default: chromium on PATH, else Playwright's own)",
    )
    parser.add_argument("--full-page", action="store_true", help="also save whole pages")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="arena-shots-") as tmp, serve(Path(tmp)) as url:
        saved = take(url, args.out, args.chromium, args.full_page)
    for path in saved:
        print(path)


if __name__ == "__main__":
    main()
