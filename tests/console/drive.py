#!/usr/bin/env python3
"""Drives kitle's web console in a real, headless Chromium (Debian's, through Playwright) the
way a marketer would, and reports what the pages showed as one JSON document.

It asserts nothing about kitle's answers itself: `tests/integration/console.rs` starts the
real server, runs this script, and compares the report with what the HTTP API says. The
script fails (exit 1, with the step) only when a page does not behave at all: an element that
never appears, a page that reports an error.

    python3 tests/console/drive.py --base http://127.0.0.1:PORT --admin-token A --read-token R \\
        --out DIR [--chromium /usr/bin/chromium] [--pause-before-erase]

Writes DIR/report.json and one screenshot per page (DIR/*.png). With --pause-before-erase it
writes the report so far (`"paused": true`) before it erases a customer, and goes on only when
a line `go` arrives on stdin (EOF stops it): the test compares every figure shown before the
erasure with the API while the store still holds that customer.
"""

import argparse
import json
import os
import sys
import time
import traceback

from playwright.sync_api import sync_playwright

from funnels import FunnelSteps, write_report

NAME = "İğdır: favoriye ekleyip sipariş vermeyenler"
REFERENCED = "rfm-platinum"
TEMPLATE = "blog-readers"
WIDTH, HEIGHT = 1280, 900


class Driver(FunnelSteps):
    def __init__(self, args, browser):
        self.args = args
        self.browser = browser
        self.report = {"steps": []}

    def step(self, name):
        self.report["steps"].append(name)
        print(f"console driver: {name}", file=sys.stderr, flush=True)

    def new_page(self):
        context = self.browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT}, locale="en-GB", accept_downloads=True
        )
        page = context.new_page()
        page.set_default_timeout(self.args.timeout * 1000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Error answers the API is expected to give (401, 400, 409) are logged by the browser
        # as failed resources; only the console's own errors count.
        page.on(
            "console",
            lambda m: errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None,
        )
        page.errors = errors
        return page

    def shot(self, page, name):
        path = os.path.join(self.args.out, f"{name}.png")
        # From the top, so that the sticky header and preview sit where a person sees them.
        page.evaluate("() => window.scrollTo(0, 0)")
        page.wait_for_timeout(150)
        page.screenshot(path=path, full_page=True)
        self.report.setdefault("screenshots", []).append(path)
        # Accessible basics: every visible control of the page has a label a screen reader
        # announces (a <label>, aria-label or aria-labelledby), and every button a name.
        self.report.setdefault("unlabelled", {})[name] = page.eval_on_selector_all(
            "input:not([type=hidden]), select, textarea, button",
            """els => els.filter(e => e.offsetParent !== null).filter(e => {
                if (e.tagName === 'BUTTON') return !(e.textContent.trim() || e.getAttribute('aria-label'));
                return !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                    && !e.getAttribute('aria-labelledby');
            }).map(e => e.outerHTML.slice(0, 160))""",
        )

    def ready(self, page, name, route=None):
        """Waits until the page (of `route`, a hash, when given) has rendered (or failed)."""
        selector = f'main .page[data-page="{name}"]'
        if route is not None:
            selector += f'[data-route="{route}"]'
        page.wait_for_selector(selector + "[data-ready]")
        state = page.get_attribute("main .page", "data-ready")
        if state != "yes":
            raise RuntimeError(f"page {name} failed: {page.inner_text('main')}")

    def go(self, page, hash_, name):
        page.evaluate("h => { window.location.hash = h }", hash_)
        self.ready(page, name, hash_)

    def sign_in(self, page, token):
        page.goto(self.args.base + "/")
        page.wait_for_selector("#token-dialog[open]")
        page.get_by_label("Access token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#scope-badge")
        return page.get_attribute("#scope-badge", "data-scope")

    # -- the steps ----------------------------------------------------------------------

    def unknown_token(self, page):
        self.step("an unknown token is refused in the sign-in dialog")
        page.goto(self.args.base + "/")
        page.wait_for_selector("#token-dialog[open]")
        page.get_by_label("Access token").fill("not-a-token-the-service-knows")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#token-error:not(:empty)")
        self.report["unknown_token_error"] = page.inner_text("#token-error")

    def segments_list(self, page):
        self.step("segments list: sizes, sparklines, templates, search")
        self.ready(page, "segments")
        rows = page.locator("#segments-table tbody tr[data-id]")
        count = rows.count()
        # Every row's sparkline has loaded from its history. (Waits are selectors: the
        # console's Content-Security-Policy forbids the eval a predicate function would need.)
        page.wait_for_selector("#segments-table tbody tr[data-id]:not([data-refreshes])", state="detached")
        listed = []
        for i in range(count):
            row = rows.nth(i)
            listed.append({
                "id": row.get_attribute("data-id"),
                "name": row.get_attribute("data-name"),
                "size_text": row.locator("td.size").inner_text(),
                "refreshes": int(row.get_attribute("data-refreshes")),
                "sparkline_canvases": row.locator(".spark canvas").count(),
            })
        self.report["list"] = listed
        self.report["templates"] = page.eval_on_selector_all(
            "[data-template]", "els => els.map(e => e.dataset.template)"
        )
        self.shot(page, "segments")
        search = page.get_by_label("Search segments")
        search.fill("SEPET")
        self.report["search_sepet"] = page.eval_on_selector_all(
            "#segments-table tbody tr[data-id]:not([hidden])", "els => els.map(e => e.dataset.id)"
        )
        search.fill("")

    def template_start(self, page):
        self.step("a ready-made segment opens in the builder")
        page.locator(f'[data-template="{TEMPLATE}"] a.button').click()
        self.ready(page, "new", f"#/new?template={TEMPLATE}")
        page.wait_for_selector('main .page[data-preview="done"]')
        self.report["template_builder"] = {
            "id": page.input_value("#segment-id"),
            "name": page.input_value("#segment-name"),
            "json": json.loads(page.input_value("#builder-json")),
            "preview_size": int(page.get_attribute("#preview-size", "data-size")),
            "preview_as_of": page.get_attribute("#preview-size", "data-as-of"),
        }

    def build(self, page):
        self.step("builder: two attribute rows and two event rows")
        self.go(page, "#/new", "new")
        root = page.locator('#conditions [data-path="condition"]')
        page.get_by_label("Name", exact=True).fill(NAME)
        page.get_by_label("Refresh", exact=True).select_option("nightly")

        add = lambda kind: root.locator(f':scope > .row-body [data-add="{kind}"]').first.click()
        row = lambda i: page.locator(f'[data-path="condition.all[{i}]"]')

        add("attribute")
        first = row(0)
        first.locator('[data-key="attribute"]').select_option("email_consent")
        first.locator('[data-key="op"]').select_option("eq")
        first.locator('[data-key="value"]').fill("granted")

        add("attribute")
        second = row(1)
        second.locator('[data-key="attribute"]').select_option("tags")
        second.locator('[data-key="op"]').select_option("has_none")
        chips = second.locator('[data-key="value"]')
        chips.fill("Kara Liste")
        chips.press("Enter")
        self.report["chips"] = second.locator(".chip").evaluate_all("els => els.map(e => e.dataset.value)")

        add("event")
        third = row(2)
        third.locator('[data-key="type-0"]').select_option("product_added_to_favorites")
        third.locator('[data-key="period"]').select_option("last")
        # A duration of 0 days is refused by the API: the problem must appear at this row.
        third.locator('[data-key="period-length-n"]').fill("0")
        page.wait_for_selector('main .page[data-preview="problems"]')
        problems = page.eval_on_selector_all(
            "li[data-problem-path]",
            """els => els.map(e => ({
                path: e.dataset.problemPath,
                message: e.querySelector('.message').textContent,
                row: e.closest('.row') ? e.closest('.row').dataset.path : null,
            }))""",
        )
        self.report["problems"] = problems
        self.report["problem_row_marked"] = third.evaluate("e => e.classList.contains('has-problem')")
        self.report["invalid_json"] = json.loads(page.input_value("#builder-json"))
        self.shot(page, "builder-problem")
        third.locator('[data-key="period-length-n"]').fill("30")

        # The last row is added from the keyboard: the "+ Event" button focused, Enter.
        root.locator(':scope > .row-body [data-add="event"]').first.focus()
        page.keyboard.press("Enter")
        fourth = row(3)
        fourth.locator('[data-key="type-0"]').select_option("order_created")
        fourth.locator('[data-key="op"]').select_option("eq")
        fourth.locator('[data-key="value"]').fill("0")

        page.wait_for_selector('main .page[data-preview="done"][data-weekly="done"]')
        self.report["problems_after_fix"] = page.locator("li[data-problem-path]").count()
        self.report["builder"] = {
            "id": page.input_value("#segment-id"),
            "json": json.loads(page.input_value("#builder-json")),
            "preview_size": int(page.get_attribute("#preview-size", "data-size")),
            "preview_as_of": page.get_attribute("#preview-size", "data-as-of"),
            "preview_diff": page.inner_text("#preview-diff"),
            "sample": page.eval_on_selector_all("#preview-sample a", "els => els.map(e => e.textContent)"),
            "weekly": page.eval_on_selector_all(
                ".sizes-table tbody tr",
                "els => els.map(e => ({as_of: e.dataset.asOf, size: Number(e.dataset.size)}))",
            ),
            "sentences": page.inner_text("#builder-sentences"),
        }
        self.shot(page, "builder")

        self.step("builder: save")
        self.report["put"] = self.save(page, self.report["builder"]["id"])
        self.report["saved_notice"] = page.inner_text("#segment-notices")

    def segment_page(self, page):
        segment_id = self.report["builder"]["id"]
        self.step("segment page: refresh now, history, members, CSV")
        self.report["admin_buttons"] = {
            b: page.locator(f"#{b}").count() for b in ("refresh-now", "delete-segment", "edit-segment", "export-csv")
        }
        page.locator("#refresh-now").click()
        page.wait_for_selector("#segment-notices .notice:has-text('Refreshed')")
        self.ready(page, "segments")
        members = []
        pages = 0
        while True:
            page.wait_for_selector("#members .pager")
            pages += 1
            members.append(page.eval_on_selector_all(
                "#members-table tbody tr", "els => els.map(e => e.dataset.customer)"
            ))
            nxt = page.locator("#members-next")
            if nxt.is_disabled() or pages == 3:
                break
            nxt.click()
            page.wait_for_selector(f'#members-table[data-page="{pages + 1}"]')
        self.report["segment_page"] = {
            "page_size": int(page.get_attribute("#members-table", "data-limit") or 0),
            "notice": page.inner_text("#segment-notices"),
            "size": page.get_attribute("#segment-size", "data-size"),
            "history": page.eval_on_selector_all(
                ".history-table tbody tr",
                """els => els.map(e => ({as_of: e.dataset.asOf, size: Number(e.dataset.size),
                    entered: Number(e.dataset.entered), exited: Number(e.dataset.exited)}))""",
            ),
            "chart_canvases": page.locator("#history-chart canvas").count(),
            "member_pages": members,
            "sentences": page.inner_text("#definition-sentences"),
            "json": json.loads(page.text_content("#definition-json")),
        }
        self.shot(page, "segment")
        with page.expect_download() as download:
            page.locator("#export-csv").click()
        path = os.path.join(self.args.out, f"{segment_id}-members.csv")
        download.value.save_as(path)
        with open(path, encoding="utf-8") as f:
            self.report["csv"] = f.read().splitlines()

    def edit(self, page):
        segment_id = self.report["builder"]["id"]
        self.step("builder on the saved segment: who would enter and exit")
        page.locator("#edit-segment").click()
        self.ready(page, "segments", f"#/segments/{segment_id}/edit")
        page.wait_for_selector('main .page[data-preview="done"]')
        row = page.locator('[data-path="condition.all[2]"]')
        row.locator('[data-key="period-length-n"]').fill("60")
        page.wait_for_selector('main .page[data-preview="done"] #preview-entered')
        self.report["edit"] = {
            "json": json.loads(page.input_value("#builder-json")),
            "size": int(page.get_attribute("#preview-size", "data-size")),
            "as_of": page.get_attribute("#preview-size", "data-as-of"),
            "entered": int(page.get_attribute("#preview-entered", "data-count")),
            "exited": int(page.get_attribute("#preview-exited", "data-count")),
            "save_label": page.inner_text("#save-segment"),
            "id_editable": page.locator("#segment-id").is_editable(),
        }

    def delete_refused(self, page):
        self.step("delete is refused while other segments refer to one")
        self.go(page, f"#/segments/{REFERENCED}", "segments")
        page.once("dialog", lambda d: d.accept())
        page.locator("#delete-segment").click()
        page.wait_for_selector("#delete-refused")
        self.report["delete_refused"] = {
            "text": page.inner_text("#delete-refused"),
            "links": page.eval_on_selector_all("#delete-refused a", "els => els.map(e => e.textContent)"),
        }

    def search_turkish(self, page):
        self.step("search folds Turkish letters")
        self.go(page, "#/segments", "segments")
        page.get_by_label("Search segments").fill("IĞDIR")
        self.report["search_igdir"] = page.eval_on_selector_all(
            "#segments-table tbody tr[data-id]:not([hidden])", "els => els.map(e => e.dataset.id)"
        )

    def customer(self, page):
        segment_id = self.report["builder"]["id"]
        member = self.report["segment_page"]["member_pages"][0][0]
        self.step(f"customer page: {member}'s segments and why")
        self.go(page, "#/customers", "customers")
        page.get_by_label("Customer id").fill(member)
        page.get_by_role("button", name="Look up").click()
        self.ready(page, "customers", f"#/customers/{member}")
        page.locator("#explain-segment").select_option(segment_id)
        page.wait_for_selector(f'#explanation[data-segment="{segment_id}"] #explain-conditions')
        self.report["customer"] = {
            "id": member,
            "segments": page.eval_on_selector_all(
                "#customer-segments tbody tr", "els => els.map(e => e.dataset.segment)"
            ),
            "member": page.get_attribute("#explain-verdict", "data-member"),
            "conditions": page.eval_on_selector_all(
                "#explain-conditions > li",
                """els => els.map(e => ({path: e.dataset.path, held: e.dataset.held === 'true',
                    explanation: e.querySelector('.explanation').textContent}))""",
            ),
        }
        self.shot(page, "customer")

    def sql(self, page):
        self.step("SQL page")
        self.go(page, "#/sql", "sql")
        query = "SELECT segment_id, count(*) AS members FROM memberships GROUP BY segment_id ORDER BY members DESC, segment_id LIMIT 5"
        page.get_by_label("Query").fill(query)
        page.get_by_role("button", name="Run").click()
        page.wait_for_selector("#sql-table")
        self.report["sql"] = {
            "query": query,
            "columns": page.eval_on_selector_all("#sql-table thead th", "els => els.map(e => e.textContent)"),
            "rows": page.eval_on_selector_all(
                "#sql-table tbody tr",
                "els => els.map(r => [...r.querySelectorAll('td')].map(td => JSON.parse(td.dataset.value)))",
            ),
        }
        self.shot(page, "sql")

    def read_token(self):
        self.step("a read token: everything but the admin buttons")
        page = self.new_page()
        scope = self.sign_in(page, self.args.read_token)
        self.ready(page, "segments")
        segment_id = self.report["builder"]["id"]
        self.go(page, f"#/segments/{segment_id}", "segments")
        buttons = {b: page.locator(f"#{b}").count() for b in ("refresh-now", "delete-segment", "edit-segment", "export-csv")}
        members = page.locator("#members-table tbody tr").count()
        self.shot(page, "segment-read")
        member = self.report["funnel_explain"]["id"]
        self.go(page, f"#/customers/{member}", "customers")
        erase_button = page.locator("#erase-customer").count()
        self.go(page, "#/new", "new")
        self.report["read"] = {
            "scope": scope,
            "buttons": buttons,
            "members_shown": members,
            "save_button": page.locator("#save-segment").count(),
            "read_only_note": page.locator("#read-only-note").count(),
            "erase_button": erase_button,
            "errors": page.errors,
        }
        page.context.close()

    def run(self):
        page = self.new_page()
        self.unknown_token(page)
        page.context.close()
        page = self.new_page()
        self.step("sign in with the admin token")
        self.report["admin_scope"] = self.sign_in(page, self.args.admin_token)
        self.segments_list(page)
        self.template_start(page)
        self.build(page)
        self.segment_page(page)
        self.edit(page)
        self.build_sequence(page)
        self.funnel_templates(page)
        self.delete_refused(page)
        self.search_turkish(page)
        self.customer(page)
        self.funnel_explain(page)
        self.sql(page)
        self.pause()
        self.erase(page)
        if self.args.showcase:
            self.step(f"showcase: {self.args.showcase}'s page")
            self.go(page, f"#/segments/{self.args.showcase}", "segments")
            page.wait_for_selector("#members .pager")
            self.shot(page, "segment-history")
        self.report["admin_errors"] = page.errors
        page.context.close()
        self.read_token()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--admin-token", required=True)
    parser.add_argument("--read-token", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--chromium", default=os.environ.get("KITLE_CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--timeout", type=int, default=60, help="seconds one page action may take")
    parser.add_argument("--showcase", help="also screenshot this segment's page (for docs/console)")
    parser.add_argument("--pause-before-erase", action="store_true",
                        help="write the report and wait for `go` on stdin before erasing")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        driver = Driver(args, browser)
        failure = None
        try:
            driver.run()
        except Exception as e:  # the report says which step failed
            failure = f"{driver.report['steps'][-1] if driver.report['steps'] else 'start'}: {e}"
            traceback.print_exc()
        finally:
            browser.close()
    driver.report["failure"] = failure
    driver.report["paused"] = False
    driver.report["seconds"] = round(time.monotonic() - started, 1)
    write_report(args.out, driver.report)
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())

