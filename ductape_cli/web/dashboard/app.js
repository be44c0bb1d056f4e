// The dashboard shell: token gate, navigation and a hash router. Each page is a
// module whose `render(main, params)` draws into <main> and returns a cleanup
// function (closing its subscriptions) for when the user navigates away.

import { ApiError, token } from "./api.js";
import { h, message, replace } from "./dom.js";

const PAGES = [
  { pattern: /^\/runs\/?$/, load: () => import("./runs.js"), nav: "runs" },
  { pattern: /^\/runs\/([^/]+)$/, load: () => import("./run.js"), nav: "runs" },
  { pattern: /^\/compare\/([^/]+)\/([^/]+)$/, load: () => import("./compare.js"), nav: "runs" },
  { pattern: /^\/workflows\/?$/, load: () => import("./workflows.js"), nav: "workflows" },
  { pattern: /^\/workflows\/([^/]+)$/, load: () => import("./workflow.js"), nav: "workflows" },
  { pattern: /^\/schedules\/?$/, load: () => import("./schedules.js"), nav: "schedules" },
];

const main = document.getElementById("main");
let cleanup = null;
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/runs";
  const [path, search = ""] = raw.split("?");
  return { path, params: new URLSearchParams(search) };
}

function markNav(name) {
  for (const link of document.querySelectorAll("nav a[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const mine = ++generation;
  if (cleanup) cleanup();
  cleanup = null;
  if (!token.get()) {
    showTokenForm();
    return;
  }
  const live = document.getElementById("live");
  live.textContent = "";
  delete live.dataset.state;
  const { path, params } = parseHash();
  const page = PAGES.find((p) => p.pattern.test(path));
  if (!page) {
    replace(main, h("h1", { tabindex: "-1" }, "Not found"), message(`No page at ${path}.`, "error"));
    return;
  }
  markNav(page.nav);
  const match = path.match(page.pattern).slice(1).map(decodeURIComponent);
  main.setAttribute("aria-busy", "true");
  try {
    const module = await page.load();
    if (mine !== generation) return;
    cleanup = (await module.render(main, match, params, () => mine !== generation)) || null;
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof ApiError && err.status === 401) {
      token.clear();
      showTokenForm("The server refused that token.");
      return;
    }
    replace(main, h("h1", { tabindex: "-1" }, "Something went wrong"), message(err.message, "error"));
  } finally {
    main.removeAttribute("aria-busy");
  }
  // Move focus to the new page's heading so keyboard and screen-reader users land on it.
  const heading = main.querySelector("h1");
  if (heading && document.activeElement === document.body) heading.focus({ preventScroll: true });
}

function showTokenForm(problem) {
  markNav(null);
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", { class: "token-form", onsubmit: (e) => {
    e.preventDefault();
    token.set(input.value.trim());
    route();
  } },
  h("label", { for: "token" }, "Access token"),
  h("p", { class: "hint", id: "token-hint" },
    "Printed by ", h("code", {}, "ductape serve"), " on first start (or the value of ", h("code", {}, "DUCTAPE_TOKEN"),
    "). It is kept in this tab's session storage only."),
  input,
  h("button", { type: "submit" }, "Open dashboard"));
  input.setAttribute("aria-describedby", "token-hint");
  replace(main, h("h1", { tabindex: "-1" }, "Connect to ductape"), problem ? message(problem, "error") : null, form);
  input.focus();
}

document.getElementById("forget-token").addEventListener("click", () => {
  token.clear();
  route();
});
window.addEventListener("hashchange", () => {
  const notice = document.getElementById("notice");
  // An action that navigates to the run it created keeps its report on screen.
  if (notice.dataset.keep) delete notice.dataset.keep;
  else notice.replaceChildren();
  route();
});
route();
