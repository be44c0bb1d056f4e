"""The dashboard in a real browser, against a live `ductape serve`, with runs made by other processes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import TOKEN, VERSION_2, Served

pytestmark = pytest.mark.slow

LIVE = 60_000  # ms: generous, the machine is shared


def started(served: Served, *args: str) -> dict[str, Any]:
    """`ductape run ... --json` in its own process; returns its result (the run may still wait)."""
    result = served.cli("run", *args, "--json")
    assert result.returncode in (0, 5), result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def status(served: Served, run_id: str) -> dict[str, Any]:
    result = served.cli("status", run_id, "--json")
    assert result.returncode in (0, 1, 3, 4, 5), result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def shoot(page: Any, served: Served, name: str, top: bool = False) -> None:
    """Save the whole page; with `top`, also what fits the window (the README's pictures)."""
    page.screenshot(path=str(served.shots / f"{name}.png"), full_page=True)
    if top:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(served.shots / f"{name}-top.png"))


def unlabelled(page: Any) -> list[str]:
    """Form controls a screen reader could not name, and status badges that are colour only."""
    return page.evaluate(
        """() => [
          ...[...document.querySelectorAll('main input, main select, main textarea, main button')]
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
            .map((el) => el.outerHTML.slice(0, 80)),
          ...[...document.querySelectorAll('.badge')].filter((b) => !/[a-z]/.test(b.textContent)).map((b) => b.outerHTML),
        ]"""
    )


def accept_next_dialog(page: Any) -> list[str]:
    """Accept the confirmation the next action asks for; returns the questions asked."""
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    return asked


def test_the_token_is_asked_once_and_kept_for_the_tab(browser: Any, served: Served) -> None:
    context = browser.new_context(base_url=served.url)
    try:
        tab = context.new_page()
        tab.goto("/")
        tab.get_by_label("Access token").fill("wrong")
        tab.get_by_role("button", name="Open dashboard").click()
        tab.get_by_text("The server refused that token.").wait_for()
        tab.get_by_label("Access token").fill(TOKEN)
        tab.get_by_role("button", name="Open dashboard").click()
        tab.get_by_role("heading", name="Runs", level=1).wait_for()
        tab.reload()
        tab.get_by_role("heading", name="Runs", level=1).wait_for()
        assert tab.evaluate("sessionStorage.getItem('ductape.token')") == TOKEN
    finally:
        context.close()


def test_runs_page_shows_a_run_started_elsewhere_and_its_completion_without_reload(
    page: Any, served: Served
) -> None:
    page.goto("/#/runs")
    page.locator("#live[data-state=live]").wait_for()
    page.evaluate("window.__sameDocument = true")

    detached = served.cli("run", "quick", "--detach", "--json")
    assert detached.returncode in (0, 5), detached.stderr
    run_id = json.loads(detached.stdout)["workflow_id"]

    row = page.locator(f"tr[data-run='{run_id}']")
    row.wait_for(timeout=LIVE)
    page.locator(f"tr[data-run='{run_id}'][data-status=completed]").wait_for(timeout=LIVE)
    assert "completed" in row.inner_text()
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    assert unlabelled(page) == []
    shoot(page, served, "runs")


def test_runs_page_filters_by_workflow_status_and_text(page: Any, served: Served) -> None:
    marked = started(served, "quick", "--input", '{"customer": "zebra-17"}')["workflow_id"]
    other = started(served, "quick", "--input", '{"customer": "okapi-3"}')["workflow_id"]
    page.goto("/#/runs")
    page.locator(f"tr[data-run='{other}']").wait_for()
    page.get_by_label("Workflow").select_option("quick")
    page.get_by_label("Status").select_option("completed")
    page.get_by_label("Text").fill("ZEBRA")
    page.get_by_role("button", name="Filter").click()

    page.wait_for_url(re.compile(r"workflow=quick&status=completed&q=ZEBRA"))
    page.locator(f"tr[data-run='{other}']").wait_for(state="detached")
    page.locator(f"tr[data-run='{marked}']").wait_for()  # the filtered page may still be on its way
    rows = page.locator("table.runs tbody tr")
    assert [rows.nth(i).get_attribute("data-run") for i in range(rows.count())] == [marked]
    assert page.locator("table.runs caption").inner_text() == "Runs 1–1 of 1, newest first"


def test_run_page_draws_a_timeline_with_one_bar_per_step(page: Any, served: Served) -> None:
    run = started(served, "quick")
    assert run["status"] == "completed"
    page.goto(f"/#/runs/{run['workflow_id']}")
    bars = page.locator("svg.timeline g.bar[data-kind=step]")
    bars.first.wait_for()
    assert bars.count() == 3
    assert [bars.nth(i).get_attribute("data-label") for i in range(3)] == [
        "step-1",
        "step-2",
        "step-3",
    ]
    assert {bars.nth(i).get_attribute("data-status") for i in range(3)} == {"completed"}
    assert page.locator("ol.steps li[data-status=completed]").count() == 3
    assert page.locator("table.history tr[data-type=step_completed]").count() == 3
    assert (
        page.evaluate("document.activeElement.tagName") == "H1"
    )  # focus lands on the page's heading
    assert unlabelled(page) == []

    # The history's type filters: hide the step events, keep the rest.
    history = page.locator("table.history tbody tr")
    everything = history.count()
    page.get_by_label(re.compile(r"^steps \(6\)$")).uncheck()
    assert history.count() == everything - 6
    assert page.locator("table.history tr[data-type^=step_]").count() == 0
    assert (
        page.locator("table.history caption").inner_text()
        == f"{everything - 6} of {everything} events"
    )


def test_replay_starts_a_new_run_linked_to_the_original(page: Any, served: Served) -> None:
    original = started(served, "quick")["workflow_id"]
    page.goto(f"/#/runs/{original}")
    page.locator("#replay-reason").fill("after the fix")
    asked = accept_next_dialog(page)
    page.get_by_role("button", name="Replay").click()

    page.wait_for_url(re.compile(r"#/runs/(?!" + re.escape(original) + ")"), timeout=LIVE)
    replayed = page.url.rsplit("/", 1)[1]
    assert asked == [f"Replay {original} as a new run?"]
    page.locator(f"h1:has-text('{replayed}') .badge[data-status=completed]").wait_for(timeout=LIVE)
    page.locator("dl.facts").get_by_role(
        "link", name=original
    ).wait_for()  # "replay of" in the run's facts
    assert status(served, replayed)["replayed_from"] == original


def test_resume_continues_a_failed_run_from_its_journal(page: Any, served: Served) -> None:
    failed = served.cli("run", "fragile", "--json")
    assert failed.returncode == 1, failed.stderr
    run_id = json.loads(failed.stdout)["workflow_id"]
    page.goto(f"/#/runs/{run_id}")
    page.locator("ol.steps li[data-step=use-flag][data-status=failed]").wait_for()
    (served.root / "flag").write_text("now it works")
    page.get_by_label("Continue from").select_option(label="step use-flag")
    asked = accept_next_dialog(page)
    page.get_by_role("button", name="Resume").click()

    page.locator("h1 .badge[data-status=completed]").wait_for(timeout=LIVE)
    assert asked == [f"Resume {run_id} from step use-flag?"]
    after = status(served, run_id)
    assert after["status"] == "completed" and after["output"] == {"ok": True}


def test_signal_form_completes_a_waiting_run(page: Any, served: Served) -> None:
    run = started(served, "orders", "--input", '{"amount": 40}')
    assert run["status"] == "running" and run["waiting"]["kind"] == "signal"
    page.goto(f"/#/runs/{run['workflow_id']}")
    page.locator("#waiting").wait_for()
    assert "waiting for signal approved" in page.locator("#waiting").inner_text()
    page.get_by_label("approver_id").fill("mgr-7")
    page.get_by_label("comments").fill("fine")
    asked = accept_next_dialog(page)
    page.get_by_role("button", name="Send signal").click()

    page.locator("h1 .badge[data-status=completed]").wait_for(timeout=LIVE)
    assert asked == [f'Send signal "approved" to {run["workflow_id"]}?']
    assert page.locator("ol.steps li[data-step=ship][data-status=completed]").count() == 1
    assert status(served, run["workflow_id"])["output"] == {"status": "shipped", "by": "mgr-7"}
    assert unlabelled(page) == []
    shoot(page, served, "run-signalled")


def test_cancel_rolls_the_run_back_and_shows_the_compensations(page: Any, served: Served) -> None:
    run = started(served, "orders", "--input", '{"amount": 50}')
    page.goto(f"/#/runs/{run['workflow_id']}")
    page.locator("#cancel-reason").fill("customer changed their mind")
    asked = accept_next_dialog(page)
    page.get_by_role("button", name="Cancel run").click()

    page.locator("h1 .badge[data-status=cancelled]").wait_for(timeout=LIVE)
    assert asked and "rollback strategy applies" in asked[0]
    page.get_by_text("compensated: charge, reserve").wait_for()
    for tag in ("reserve", "charge"):
        assert (
            page.locator(
                f"ol.steps li[data-step={tag}][data-status=rolled_back] .mark.compensated"
            ).count()
            == 1
        )
    undo = page.locator("svg.timeline g.bar[data-kind=compensation]")
    assert [undo.nth(i).get_attribute("data-label") for i in range(undo.count())] == [
        "↺ undo charge",
        "↺ undo reserve",
    ]
    after = status(served, run["workflow_id"])
    assert after["status"] == "cancelled"
    assert after["rollback_result"]["rolled_back_steps"] == ["charge", "reserve"]
    shoot(page, served, "run", top=True)


def test_compare_shows_the_input_difference_of_a_restarted_run(page: Any, served: Served) -> None:
    run = started(served, "orders", "--input", '{"amount": 5}')
    page.goto(f"/#/runs/{run['workflow_id']}")
    page.locator("#restart-input").fill('{"amount": 7}')
    accept_next_dialog(page)
    page.get_by_role("button", name="Restart").click()

    page.wait_for_url(re.compile(r"#/runs/(?!" + re.escape(run["workflow_id"]) + ")"), timeout=LIVE)
    restarted = page.url.rsplit("/", 1)[1]
    page.locator(f"h1:has-text('{restarted}')").wait_for()
    page.get_by_text(f"restarted: new run {restarted}").wait_for()
    assert status(served, restarted)["restarted_from"] == run["workflow_id"]
    link = page.get_by_role("link", name="compare with this run")
    link.wait_for()
    link.click()

    row = page.locator("table.input-diff tr[data-field=amount]")
    row.wait_for()
    assert [row.locator("td").nth(i).inner_text() for i in range(2)] == [
        "5",
        "7",
    ]  # the original on the left
    assert page.locator("h1").inner_text() == "Compare runs"
    shoot(page, served, "compare")


def test_workflow_page_draws_the_graph_with_the_condition_text(page: Any, served: Served) -> None:
    page.goto("/#/workflows/orders")
    graph = page.locator("svg.graph")
    graph.wait_for()
    labels = [n.get_attribute("data-label") for n in graph.locator("g.node").all()]
    assert labels == ["start", "check", "reserve", "charge", "✉ wait for approved", "ship", "end"]
    conditions = graph.locator(".edge.conditional text").all_text_contents()
    assert conditions == ["if $Step{check}{ok} == true"]
    assert graph.locator(".edge.else").count() == 1
    assert "↺ rollback" in (graph.locator("g.node[data-label=charge]").text_content() or "")
    page.locator("#versions li[data-version]").first.wait_for()
    assert "first version" in page.locator("#versions").inner_text()
    assert unlabelled(page) == []
    shoot(page, served, "workflow", top=True)


def test_workflow_page_lists_versions_with_what_changed_and_links_child_workflows(
    page: Any, served: Served
) -> None:
    (served.root / "workflows" / "evolving.py").write_text(VERSION_2, encoding="utf-8")
    defined = served.cli("define")
    assert defined.returncode == 0, defined.stderr
    page.goto("/#/workflows/evolving")
    newest = page.locator("#versions > ol > li").first
    newest.wait_for()
    assert page.locator("#versions > ol > li").count() == 2
    changes = newest.locator("ul.changes li").all_inner_texts()
    assert changes == ["+ step second", "~ step first: retries, retry_delay_ms", "+ child quick"]
    child = page.locator("svg.graph a g.node[data-kind=child]")
    assert child.get_attribute("data-label") == "⎘ child quick"
    page.locator("svg.graph a[aria-label='child workflow quick']").click()
    page.wait_for_url(re.compile(r"#/workflows/quick$"))
    page.locator("svg.graph g.node[data-label=step-1]").wait_for()


def test_schedules_page_lists_and_pauses_and_resumes(page: Any, served: Served) -> None:
    made = served.cli(
        "dispatch", "orders", "--input", '{"amount": 1}', "--cron", "0 9 * * *", "--json"
    )
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)["job_id"]
    page.goto("/#/schedules")
    row = page.locator(f"tr[data-schedule='{job}']")
    row.wait_for()
    assert row.locator("ul.times li").count() == 3

    accept_next_dialog(page)
    row.get_by_role("button", name=f"Pause schedule {job}").click()
    page.locator(f"tr[data-schedule='{job}'][data-paused=true]").wait_for()
    assert json.loads(served.cli("schedules", "show", job, "--json").stdout)["paused"] is True

    accept_next_dialog(page)
    page.get_by_role("button", name=f"Resume schedule {job}").click()
    page.locator(f"tr[data-schedule='{job}'][data-paused=false]").wait_for()
    assert json.loads(served.cli("schedules", "show", job, "--json").stdout)["paused"] is False
    assert unlabelled(page) == []
    shoot(page, served, "schedules")
