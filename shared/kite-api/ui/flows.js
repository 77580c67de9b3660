// Flows: every flow by namespace, with search, triggers and the last execution.

import { api, query } from "./api.js";
import { empty, errorBox, executionHref, flowHref, go, h, mount, stateBadge, time } from "./dom.js";

const PAGE_SIZE = 100;

/** A short description of a trigger: "webhook", "schedule 0 * * * *", "flow". */
export function triggerKind(t) {
  const type = String(t.type || "");
  if (/Webhook$/.test(type)) return "webhook";
  if (/Schedule$/.test(type)) return "schedule";
  if (/\.Flow$/.test(type)) return "flow";
  return type.split(".").pop() || "trigger";
}

export function triggerChip(t) {
  const kind = triggerKind(t);
  const detail = kind === "schedule" ? t.cron : null;
  return h("span", { class: `chip chip-${kind}${t.disabled ? " disabled" : ""}`, title: `${t.id}: ${t.type}${t.disabled ? " (disabled)" : ""}` },
    kind, detail ? h("code", {}, ` ${detail}`) : null);
}

export async function flowsPage(main, { query: q, signal }) {
  document.title = "Flows · Kite";
  const search = q.get("q") || "";
  const namespace = q.get("namespace") || "";
  const page = Math.max(1, parseInt(q.get("page") || "1", 10) || 1);
  const searchField = h("input", { id: "flow-search", type: "search", name: "q", value: search, placeholder: "id, namespace or description" });
  const nsField = h("input", { id: "flow-ns", type: "text", name: "namespace", value: namespace, placeholder: "all", list: "namespaces" });
  const nsList = h("datalist", { id: "namespaces" });
  const results = h("div", { class: "results", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading flows…"));
  const form = h("form", { class: "filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    go(`/ui/flows${query({ q: searchField.value.trim(), namespace: nsField.value.trim() })}`);
  } },
  h("div", { class: "field" }, h("label", { for: "flow-search" }, "Search"), searchField),
  h("div", { class: "field" }, h("label", { for: "flow-ns" }, "Namespace"), nsField, nsList),
  h("div", { class: "field field-button" }, h("button", { type: "submit", class: "btn" }, "Search")));
  mount(main, h("div", { class: "page-head" }, h("h1", {}, "Flows")), form, results);

  let data;
  try {
    data = await api(`/flows/search${query({ q: search, namespace, page, size: PAGE_SIZE, sort: "namespace:asc" })}`, { signal });
  } catch (e) {
    if (signal.aborted) return;
    mount(results, errorBox(e, "Cannot list the flows"));
    return;
  }
  const flows = data.results || [];
  const namespaces = [...new Set(flows.map((f) => f.namespace))];
  nsList.replaceChildren(...namespaces.map((n) => h("option", { value: n })));
  if (!flows.length) {
    mount(results, search || namespace
      ? empty("No flow matches this search.", h("a", { href: "/ui/flows" }, "Show all flows"))
      : empty("No flows yet.", h("p", {}, "Put flow files (.yaml) in the server's flows folder, or create one with ",
        h("code", {}, "POST /api/v1/flows"), " or ", h("code", {}, "kite flow deploy"), ".")));
    return;
  }
  const lastCells = new Map();
  const groups = namespaces.map((ns) => h("section", { class: "ns-group", "aria-label": `Namespace ${ns}` },
    h("h2", {}, h("span", { class: "muted" }, "namespace "), ns),
    h("div", { class: "table-wrap" }, h("table", { class: "flows" },
      h("thead", {}, h("tr", {}, ["Flow", "Triggers", "Last execution"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, flows.filter((f) => f.namespace === ns).map((f) => {
        const last = h("td", { class: "last" }, h("span", { class: "muted" }, "…"));
        lastCells.set(`${f.namespace}/${f.id}`, last);
        return h("tr", {},
          h("td", {}, h("a", { href: flowHref(f.namespace, f.id), class: "flow-link" }, f.id),
            f.disabled ? h("span", { class: "chip disabled" }, "disabled") : null,
            f.description ? h("div", { class: "desc" }, f.description) : null),
          h("td", {}, (f.triggers || []).length ? f.triggers.map(triggerChip) : h("span", { class: "muted" }, "none")),
          last);
      }))))));
  const total = data.total ?? flows.length;
  const pager = total > PAGE_SIZE ? h("nav", { class: "pager", "aria-label": "Pages" },
    page > 1 ? h("a", { class: "btn", href: `/ui/flows${query({ q: search, namespace, page: page - 1 })}` }, "Previous") : null,
    h("span", {}, `${(page - 1) * PAGE_SIZE + 1}–${Math.min(total, page * PAGE_SIZE)} of ${total}`),
    page * PAGE_SIZE < total ? h("a", { class: "btn", href: `/ui/flows${query({ q: search, namespace, page: page + 1 })}` }, "Next") : null) : null;
  mount(results, h("p", { class: "muted count" }, `${total} flow${total === 1 ? "" : "s"}`), groups, pager);

  // The last execution of every flow of the page, in one request.
  let latest;
  try {
    latest = await api("/executions/latest", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(flows.map((f) => ({ namespace: f.namespace, id: f.id }))), signal });
  } catch (e) {
    if (signal.aborted) return;
    lastCells.forEach((cell) => mount(cell, h("span", { class: "muted", title: e.message }, "unknown")));
    return;
  }
  const found = new Map((latest || []).map((e) => [`${e.namespace}/${e.flowId}`, e]));
  lastCells.forEach((cell, key) => {
    const e = found.get(key);
    mount(cell, e ? [h("a", { href: executionHref(e), "aria-label": `Last execution: ${e.status}` }, stateBadge(e.status)), " ", time(e.startDate)]
      : h("span", { class: "muted" }, "never run"));
  });
}
