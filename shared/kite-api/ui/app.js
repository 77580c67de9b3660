// The single page: routes under /ui/ (History API), the header, the token prompt.

import { getToken, onUnauthorized, setToken } from "./api.js";
import { errorBox, go, h, mount, openDialog } from "./dom.js";
import { flowsPage } from "./flows.js";
import { flowPage } from "./flow.js";
import { executionsPage } from "./executions.js";
import { executionPage } from "./execution.js";

const main = document.getElementById("main");
let current = null; // AbortController of the page on screen

const routes = [
  [/^\/ui\/?$/, () => redirect("/ui/flows")],
  [/^\/ui\/flows\/?$/, flowsPage, "flows"],
  [/^\/ui\/flows\/edit\/([^/]+)\/([^/]+)(?:\/([^/]+))?\/?$/, flowPage, "flows"],
  [/^\/ui\/executions\/?$/, executionsPage, "executions"],
  [/^\/ui\/executions\/([^/]+)\/([^/]+)\/([^/]+)\/?$/, executionPage, "executions"],
  // By id alone (a subflow's execution id): the page then shows its full address.
  [/^\/ui\/executions\/([^/]+)\/?$/, (main, ctx) => executionPage(main, { ...ctx, params: ["", "", ctx.params[0]] }),
    "executions"],
];

function redirect(to) {
  history.replaceState(null, "", to);
  render();
}


/** Renders the page of the current URL; the previous page's work is aborted. */
async function render() {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const path = location.pathname;
  for (const [re, page, nav] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    document.querySelectorAll("[data-nav]").forEach((a) => {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    const params = m.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
    try {
      await page(main, { params, query: new URLSearchParams(location.search), signal: controller.signal });
    } catch (e) {
      if (e.name !== "AbortError" && !controller.signal.aborted) {
        mount(main, h("h1", {}, "Something went wrong"), errorBox(e));
      }
    }
    return;
  }
  document.title = "Not found · Kite";
  mount(main, h("h1", {}, "Page not found"), h("p", {}, "There is no page at ", h("code", {}, path), ". ",
    h("a", { href: "/ui/flows" }, "Go to the flows.")));
}

// Same-origin links under /ui/ are routed here, without reloading the page.
document.addEventListener("click", (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui/")) return;
  e.preventDefault();
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  go(url.pathname + url.search);
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
});

window.addEventListener("popstate", render);
window.addEventListener("kite:navigate", render);

// A bearer token: asked for when the API answers 401, kept for this tab only.
const tokenButton = document.getElementById("token-button");
let asking = false;
function askToken(message) {
  if (asking) return;
  asking = true;
  const field = h("input", { id: "token-field", type: "password", autocomplete: "off", required: true, value: getToken() });
  const form = h("form", { class: "stack", onsubmit: (e) => {
    e.preventDefault();
    setToken(field.value.trim());
    tokenButton.hidden = !getToken();
    close();
    render();
  } },
  message ? errorBox({ message }) : null,
  h("p", {}, "This server needs an API token. It is kept in this browser tab only (sessionStorage)."),
  h("div", { class: "field" }, h("label", { for: "token-field" }, "API token"), field),
  h("div", { class: "actions" },
    getToken() ? h("button", { type: "button", class: "btn", onclick: () => {
      setToken("");
      tokenButton.hidden = true;
      close();
      render();
    } }, "Forget token") : null,
    h("button", { type: "submit", class: "btn primary" }, "Use token")));
  const { close } = openDialog("API token", form, { onClose: () => (asking = false) });
  field.focus();
}
onUnauthorized((e) => askToken(getToken() ? `${e.message}: the token was refused.` : ""));
tokenButton.hidden = !getToken();
tokenButton.addEventListener("click", () => askToken(""));

render();
