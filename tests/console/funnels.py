"""The console driver's steps for sequences (funnels) and erasure, mixed into `drive.Driver`:
a 3-step sequence built in the builder (steps added, moved and removed, problems at their
step), the ready-made funnels opened and saved unchanged, a funnel member's explanation step
by step, the pause before the erasure (see drive.py's --pause-before-erase) and the erasure
from the customer page. Like drive.py, it reports what the pages showed and asserts nothing
about kitle's answers.
"""

import json
import os
import sys

SEQUENCE_NAME = "Ayakkabı hunisi: bakıp sepete ekleyip sipariş verenler"
SHOE = "cat-ayakkabı"
FUNNEL = "funnel-view-cart-order-7d"
FUNNEL_TEMPLATES = ("funnel-view-cart-order-7d", "shoe-cart-no-order-7d")


def write_report(out, report):
    """Writes DIR/report.json whole (a reader never sees half of it)."""
    path = os.path.join(out, "report.json")
    with open(path + ".part", "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=2)
    os.replace(path + ".part", path)


class FunnelSteps:
    def build_sequence(self, page):
        self.step("builder: a 3-step sequence with a within (steps added, moved, removed)")
        self.go(page, "#/new", "new")
        root = page.locator('#conditions [data-path="condition"]')
        page.get_by_label("Name", exact=True).fill(SEQUENCE_NAME)
        root.locator(':scope > .row-body [data-add="sequence"]').first.click()
        row = page.locator('[data-path="condition.all[0]"]')
        step = lambda i: row.locator(f'[data-path="condition.all[0].sequence[{i}]"]')
        key = lambda k: row.locator(f'[data-key="{k}"]')
        report = {
            "kind": row.get_attribute("data-kind"),
            "steps_at_start": row.locator("li.step").count(),
            # Two steps are the fewest a sequence has: neither can be removed then.
            "remove_disabled_at_2": key("step-0-remove").is_disabled() and key("step-1-remove").is_disabled(),
        }
        key("step-0-type-0").select_option("product_viewed")
        key("step-0-add-filter").click()
        key("step-0-where-0-property").select_option("category_id")
        key("step-0-where-0-op").select_option("eq")
        key("step-0-where-0-value").fill(SHOE)
        key("step-1-type-0").select_option("product_added_to_cart")
        key("add-step").click()
        key("step-2-type-0").select_option("order_created")
        # Moved down and back up: the order the steps show after each move.
        key("step-1-down").click()
        order = lambda: [key(f"step-{i}-type-0").input_value() for i in range(row.locator("li.step").count())]
        report["after_move_down"] = order()
        key("step-2-up").click()
        report["after_move_up"] = order()
        key("add-step").click()
        report["steps_after_add"] = row.locator("li.step").count()
        key("step-3-remove").click()
        report["steps_after_remove"] = row.locator("li.step").count()

        # Two problems at once: a within of 0 days, and a filter value the API refuses in step 2.
        key("within-on").check()
        key("within-n").fill("0")
        key("step-1-add-filter").click()
        key("step-1-where-0-property").select_option("amount")
        key("step-1-where-0-value").fill("abc")
        page.wait_for_selector('li[data-problem-path="condition.all[0].sequence[1].where[0].value"]')
        page.wait_for_selector('li[data-problem-path="condition.all[0].within"]')
        report["problems"] = page.eval_on_selector_all(
            "li[data-problem-path]",
            """els => els.map(e => ({
                path: e.dataset.problemPath,
                message: e.querySelector('.message').textContent,
                row: e.closest('.row') ? e.closest('.row').dataset.path : null,
                step: e.closest('li.step') ? Number(e.closest('li.step').dataset.step) : null,
                place: e.parentElement.parentElement.dataset.path,
            }))""",
        )
        report["invalid_json"] = json.loads(page.input_value("#builder-json"))
        self.shot(page, "builder-sequence-problem")
        key("within-n").fill("7")
        step(1).get_by_role("button", name="Remove the filter on amount").click()
        page.wait_for_selector('main .page[data-preview="done"][data-weekly="done"]')
        report.update({
            "problems_after_fix": page.locator("li[data-problem-path]").count(),
            "id": page.input_value("#segment-id"),
            "json": json.loads(page.input_value("#builder-json")),
            "preview_size": int(page.get_attribute("#preview-size", "data-size")),
            "preview_as_of": page.get_attribute("#preview-size", "data-as-of"),
            "sample": page.eval_on_selector_all("#preview-sample a", "els => els.map(e => e.textContent)"),
            "sentences": page.inner_text("#builder-sentences"),
        })
        self.shot(page, "builder-sequence")
        report["put"] = self.save(page, report["id"])
        self.report["sequence"] = report

    def save(self, page, segment_id):
        """Clicks Save and waits for the segment's page; answers the PUT the console sent."""
        sent = {}

        def on_request(request):
            if request.method == "PUT" and "/v1/segments/" in request.url:
                sent["url"] = request.url
                sent["body"] = json.loads(request.post_data)

        page.on("request", on_request)
        page.locator("#save-segment").click()
        self.ready(page, "segments", f"#/segments/{segment_id}")
        page.remove_listener("request", on_request)
        return sent

    def funnel_templates(self, page):
        opened = {}
        for template in FUNNEL_TEMPLATES:
            self.step(f"a ready-made funnel in the builder: {template}, saved unchanged")
            self.go(page, f"#/new?template={template}", "new")
            page.wait_for_selector('main .page[data-preview="done"]')
            segment_id = page.input_value("#segment-id")
            opened[template] = {
                "id": segment_id,
                "kinds": page.eval_on_selector_all("#conditions .row", "els => els.map(e => e.dataset.kind)"),
                "steps": page.locator("#conditions li.step").count(),
                "json": json.loads(page.input_value("#builder-json")),
                "sentences": page.inner_text("#builder-sentences"),
                "put": self.save(page, segment_id),
            }
        self.report["funnels"] = opened

    def funnel_explain(self, page):
        self.step(f"customer page: why a member of {FUNNEL} is in it, step by step")
        self.go(page, f"#/segments/{FUNNEL}", "segments")
        page.wait_for_selector("#members .pager")
        members = page.eval_on_selector_all("#members-table tbody tr", "els => els.map(e => e.dataset.customer)")
        member = members[0]
        self.report["funnel_explain"] = {"id": members[0], "members": members, **self.explained(page, member)}
        self.shot(page, "customer-sequence")
        # A customer who never ordered (a member of the segment built earlier): not completed.
        other = self.report["customer"]["id"]
        self.step(f"customer page: why {other} is not in {FUNNEL}")
        self.report["funnel_explain_other"] = {"id": other, **self.explained(page, other)}

    def explained(self, page, customer):
        """The explanation of FUNNEL for `customer` as the customer page shows it."""
        self.go(page, f"#/customers/{customer}?segment={FUNNEL}", "customers")
        page.wait_for_selector(f'#explanation[data-segment="{FUNNEL}"] #explain-conditions')
        return {
            "member": page.get_attribute("#explain-verdict", "data-member"),
            "conditions": page.eval_on_selector_all(
                "#explain-conditions > li",
                """els => els.map(e => ({
                    path: e.dataset.path, held: e.dataset.held === 'true',
                    steps: [...e.querySelectorAll('ol.reached > li')].map(s => ({
                        reached: s.dataset.reached === 'true', at: s.dataset.at || null,
                        text: s.textContent })),
                    completed: e.querySelector('[data-completed]')
                        ? (e.querySelector('[data-completed]').dataset.completed || null) : null,
                }))""",
            ),
        }

    def pause(self):
        """Writes the report so far and waits for `go` on stdin (see the module's doc)."""
        if not self.args.pause_before_erase:
            return
        self.step("paused before the erasure: the test compares what was shown")
        self.report["paused"] = True
        self.report["failure"] = None
        write_report(self.args.out, self.report)
        line = sys.stdin.readline()
        if line.strip() != "go":
            raise RuntimeError(f"not resumed (stdin said {line!r})")
        self.report["paused"] = False

    def erase(self, page):
        members = self.report["funnel_explain"]["members"]
        who = members[1] if len(members) > 1 else members[0]
        self.step(f"customer page: erase {who} (admin)")
        self.go(page, f"#/customers/{who}", "customers")
        before = page.eval_on_selector_all("#customer-segments tbody tr", "els => els.map(e => e.dataset.segment)")
        report = {"id": who, "before": before, "button": page.locator("#erase-customer").count()}
        page.locator("#erase-customer").click()
        page.wait_for_selector("#erase-dialog[open]")
        confirm = page.get_by_label("Type the customer id")
        confirm.fill(who + "x")
        report["submit_disabled_on_mismatch"] = page.locator("#erase-submit").is_disabled()
        confirm.fill(who)
        report["submit_enabled_on_match"] = page.locator("#erase-submit").is_enabled()
        page.get_by_label("Reason").fill("KVKK başvurusu 2025/118")
        self.shot(page, "customer-erase")
        page.locator("#erase-submit").click()
        page.wait_for_selector('#erase-outcome[data-state="done"]')
        page.wait_for_selector("#customer-none")
        report.update({
            "outcome_segments": json.loads(page.get_attribute("#erase-outcome", "data-segments")),
            "outcome_links": page.eval_on_selector_all("#erase-left li", "els => els.map(e => e.dataset.segment)"),
            "outcome_text": page.inner_text("#erase-outcome"),
            "after_heading": page.inner_text("#in-title"),
            "after_rows": page.locator("#customer-segments tbody tr").count(),
        })
        self.report["erase"] = report
