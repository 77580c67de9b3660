// Executions: filters (namespace, flow, state, text, label, date range) and pagination,
// kept in the URL so that links and the Back button work; refreshed while shown; bulk
// kill, restart, replay and delete of the selected executions.

import { api, ApiError, query } from "./api.js";
import { empty, errorBox, go, h, mount, STATES, TERMINAL, toast } from "./dom.js";
import { executionsTable } from "./flow.js";

/** How often the list refreshes while an execution on it runs, and otherwise. */
const REFRESH_RUNNING_MS = 3000;
const REFRESH_IDLE_MS = 15000;

/** The bulk actions: Kestra's by-ids routes. */
const ACTIONS = [
  { label: "Kill", method: "DELETE", path: "/executions/kill/by-ids", done: "Killed", confirm: true },
  { label: "Restart", method: "POST", path: "/executions/restart/by-ids", done: "Restarted" },
  { label: "Replay", method: "POST", path: "/executions/replay/by-ids", done: "Replayed" },
  { label: "Delete", method: "DELETE", path: "/executions/by-ids", done: "Deleted", confirm: true },
];

const SIZES = [5, 10, 25, 50, 100];
const pad = (n) => String(n).padStart(2, "0");

/** "2024-05-01T10:00" (local, from datetime-local) → ISO with the local offset. */
function withOffset(local) {
  if (!local) return "";
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) return local;
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  return `${local.length === 16 ? `${local}:00` : local}${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

export async function executionsPage(main, { query: q, signal }) {
  document.title = "Executions · Kite";
  const f = {
    namespace: q.get("namespace") || "",
    flowId: q.get("flowId") || "",
    state: q.get("state") || "",
    q: q.get("q") || "",
    label: q.get("label") || "",
    from: q.get("from") || "",
    to: q.get("to") || "",
    page: Math.max(1, parseInt(q.get("page") || "1", 10) || 1),
    size: SIZES.includes(+q.get("size")) ? +q.get("size") : 25,
  };
  const field = (id, label, control) => h("div", { class: "field" }, h("label", { for: id }, label), control);
  const ns = h("input", { id: "f-namespace", type: "text", value: f.namespace, placeholder: "all" });
  const flow = h("input", { id: "f-flow", type: "text", value: f.flowId, placeholder: "all" });
  const text = h("input", { id: "f-q", type: "search", value: f.q, placeholder: "id, namespace, flow" });
  const label = h("input", { id: "f-label", type: "text", value: f.label, placeholder: "key:value" });
  const state = h("select", { id: "f-state" }, h("option", { value: "" }, "any"),
    STATES.map((s) => h("option", { value: s, selected: s === f.state }, s)));
  const from = h("input", { id: "f-from", type: "datetime-local", value: f.from });
  const to = h("input", { id: "f-to", type: "datetime-local", value: f.to });
  const size = h("select", { id: "f-size" }, SIZES.map((s) => h("option", { value: String(s), selected: s === f.size }, String(s))));
  const url = (over) => {
    const v = { ...f, ...over };
    return `/ui/executions${query({ namespace: v.namespace, flowId: v.flowId, state: v.state, q: v.q, label: v.label, from: v.from, to: v.to,
      page: v.page > 1 ? v.page : "", size: v.size !== 25 ? v.size : "" })}`;
  };
  const form = h("form", { class: "filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    go(url({ namespace: ns.value.trim(), flowId: flow.value.trim(), state: state.value, q: text.value.trim(),
      label: label.value.trim(), from: from.value, to: to.value, size: +size.value, page: 1 }));
  } },
  field("f-namespace", "Namespace", ns), field("f-flow", "Flow", flow), field("f-state", "State", state),
  field("f-q", "Text", text), field("f-label", "Label", label),
  field("f-from", "Started after", from), field("f-to", "Started before", to), field("f-size", "Per page", size),
  h("div", { class: "field field-button" }, h("button", { type: "submit", class: "btn" }, "Filter"),
    h("a", { class: "btn ghost", href: "/ui/executions" }, "Reset")));
  const results = h("div", { class: "results", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading executions…"));
  mount(main, h("div", { class: "page-head" }, h("h1", {}, "Executions")), form, results);

  const selected = new Set();
  const bar = h("div", { class: "bulk", role: "group", "aria-label": "Selected executions", hidden: true });
  const renderBar = () => {
    bar.hidden = selected.size === 0;
    mount(bar, h("span", {}, `${selected.size} selected`),
      ACTIONS.map((a) => h("button", { type: "button", class: `btn small${a.confirm ? " danger" : ""}`, onclick: () => act(a) }, a.label)),
      h("button", { type: "button", class: "btn small ghost", onclick: () => {
        selected.clear();
        load();
      } }, "Clear"));
  };
  const act = async (a) => {
    const ids = [...selected];
    if (a.confirm && !confirm(`${a.label} ${ids.length} execution${ids.length === 1 ? "" : "s"}?`)) return;
    try {
      const answer = await api(a.path, { method: a.method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(ids) });
      toast(`${a.done} ${answer?.count ?? ids.length} execution${ids.length === 1 ? "" : "s"}`, "success");
      selected.clear();
    } catch (e) {
      // Kestra refuses the whole request, naming each id that cannot take the action.
      const invalids = e instanceof ApiError ? e.body?.invalids || [] : [];
      toast(invalids.length ? `${e.message}: ${invalids.map((x) => `${x.invalidValue} (${x.message})`).join(", ")}` : e.message, "error");
    }
    load();
  };

  let timer = null;
  signal.addEventListener("abort", () => clearTimeout(timer));
  const load = async () => {
    clearTimeout(timer);
    let data;
    try {
      data = await api(`/executions/search${query({
        namespace: f.namespace, flowId: f.flowId, state: f.state, q: f.q, labels: f.label,
        startDate: withOffset(f.from), endDate: withOffset(f.to), page: f.page, size: f.size, sort: "state.startDate:desc",
      })}`, { signal });
    } catch (e) {
      if (!signal.aborted) mount(results, errorBox(e, "Cannot list the executions"));
      return;
    }
    if (signal.aborted) return;
    show(data);
    const running = (data.results || []).some((e) => !TERMINAL.has(e.state?.current));
    timer = setTimeout(() => document.hidden || load(), running ? REFRESH_RUNNING_MS : REFRESH_IDLE_MS);
  };

  const show = (data) => {
    const rows = data.results || [];
    const total = data.total ?? rows.length;
    const filtered = f.namespace || f.flowId || f.state || f.q || f.label || f.from || f.to;
    if (!rows.length) {
      mount(results, f.page > 1 && total
        ? empty(`Page ${f.page} is past the last page.`, h("a", { href: url({ page: 1 }) }, "First page"))
        : filtered
          ? empty("No executions match these filters.", h("a", { href: "/ui/executions" }, "Show all executions"))
          : empty("No executions yet.", h("p", {}, "Open a flow in ", h("a", { href: "/ui/flows" }, "Flows"), " and press Execute.")));
      return;
    }
    const first = (f.page - 1) * f.size + 1;
    const last = first + rows.length - 1;
    renderBar();
    mount(results,
      h("p", { class: "muted count" }, `${first}–${last} of ${total}`),
      bar,
      executionsTable(rows, { showFlow: true, selected, onSelect: renderBar }),
      h("nav", { class: "pager", "aria-label": "Pages" },
        f.page > 1 ? h("a", { class: "btn", href: url({ page: f.page - 1 }), rel: "prev" }, "Previous") : h("span", {}),
        h("span", {}, `Page ${f.page} of ${Math.max(1, Math.ceil(total / f.size))}`),
        last < total ? h("a", { class: "btn", href: url({ page: f.page + 1 }), rel: "next" }, "Next") : h("span", {})));
  };
  await load();
}
