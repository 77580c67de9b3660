// The flow page (overview, source with editor, revisions) and the Execute dialog.

import { api, ApiError, query, stageFile } from "./api.js";
import {
  copyBlock, durationMs, empty, enc, errorBox, executionHref, flowHref, formatMs, go, h, mount, openDialog,
  show, stateBadge, stateDuration, table, TERMINAL, time, toast,
} from "./dom.js";
import { triggerChip, triggerKind } from "./flows.js";
import { inputsForm } from "./inputs.js";
import { lineOf, yamlEditor, yamlView } from "./yaml.js";

const TABS = [["overview", "Overview"], ["source", "Source"], ["revisions", "Revisions"]];

export async function flowPage(main, { params: [ns, id, tab = "overview"], query: q, signal }) {
  document.title = `${id} · Kite`;
  const body = h("div", {}, h("p", { class: "muted" }, "Loading the flow…"));
  mount(main, body);
  let flow;
  try {
    flow = await api(`/flows/${enc(ns)}/${enc(id)}`, { signal });
  } catch (e) {
    if (signal.aborted) return;
    mount(main, h("h1", {}, `${ns}.${id}`), errorBox(e, e.status === 404 ? "No such flow" : "Cannot load the flow"),
      h("p", {}, h("a", { href: "/ui/flows" }, "Back to the flows")));
    return;
  }
  const executeButton = h("button", { type: "button", class: "btn primary", id: "execute", disabled: flow.disabled || null,
    onclick: () => openExecute(flow) }, "Execute");
  const tabs = h("nav", { class: "tabs", "aria-label": "Flow" }, TABS.map(([key, label]) =>
    h("a", { href: flowHref(ns, id, key === "overview" ? "" : key), "aria-current": key === tab ? "page" : null }, label)));
  const content = h("div", { class: "tab-content" });
  mount(main,
    h("div", { class: "page-head" },
      h("div", {},
        h("p", { class: "crumbs" }, h("a", { href: "/ui/flows" }, "Flows"), " / ", h("a", { href: `/ui/flows?namespace=${enc(ns)}` }, ns)),
        h("h1", {}, id, " ", h("span", { class: "chip" }, `revision ${flow.revision}`),
          flow.disabled ? h("span", { class: "chip disabled" }, "disabled") : null)),
      h("div", { class: "head-actions" }, executeButton)),
    flow.description ? h("p", { class: "lead" }, flow.description) : null,
    tabs, content);
  if (tab === "source") sourceTab(content, flow, q.get("edit") === "1");
  else if (tab === "revisions") await revisionsTab(content, flow, q, signal);
  else await overviewTab(content, flow, signal);
}

function webhookUrl(flow, key) {
  return `${location.origin}/api/v1/executions/webhook/${enc(flow.namespace)}/${enc(flow.id)}/${enc(key)}`;
}

async function overviewTab(content, flow, signal) {
  const inputs = flow.inputs || [];
  const triggers = flow.triggers || [];
  const recent = h("div", {}, h("p", { class: "muted" }, "Loading executions…"));
  mount(content,
    h("section", { "aria-labelledby": "inputs-h" },
      h("h2", { id: "inputs-h" }, "Inputs"),
      inputs.length
        ? table(["Id", "Type", "Required", "Default"], inputs.map((i) => h("tr", {},
          h("td", {}, h("code", {}, i.id), i.description ? h("div", { class: "desc" }, i.description) : null),
          h("td", {}, i.type), h("td", {}, i.required === false ? "no" : "yes"),
          h("td", {}, i.defaults === undefined ? h("span", { class: "muted" }, "–") : h("code", {}, show(i.defaults))))))
        : h("p", { class: "muted" }, "This flow has no inputs.")),
    h("section", { "aria-labelledby": "triggers-h" },
      h("h2", { id: "triggers-h" }, "Triggers"),
      triggers.length ? triggers.map((t) => triggerCard(flow, t)) : h("p", { class: "muted" }, "No triggers: this flow runs when executed from the UI, the API or another flow.")),
    h("section", { "aria-labelledby": "recent-h" },
      h("div", { class: "section-head" }, h("h2", { id: "recent-h" }, "Recent executions"),
        h("a", { href: `/ui/executions${query({ namespace: flow.namespace, flowId: flow.id })}` }, "All executions of this flow")),
      recent));
  try {
    const page = await api(`/executions/search${query({ namespace: flow.namespace, flowId: flow.id, size: 10, sort: "state.startDate:desc" })}`, { signal });
    const rows = (page.results || []).filter((e) => e.flowId === flow.id && e.namespace === flow.namespace);
    mount(recent, rows.length ? executionsTable(rows) : empty("No executions yet. Press Execute to run this flow."));
  } catch (e) {
    if (!signal.aborted) mount(recent, errorBox(e, "Cannot list the executions"));
  }
}

/**
 * The executions table. With `selected` (a Set of ids), each row and the header get a
 * checkbox that adds to or removes from it, and `onSelect()` is called on every change.
 */
export function executionsTable(rows, { showFlow = false, selected = null, onSelect = () => {} } = {}) {
  const boxes = [];
  const box = (e) => {
    const input = h("input", { type: "checkbox", class: "select", "aria-label": `Select ${e.id}`, checked: selected.has(e.id),
      onchange: () => {
        if (input.checked) selected.add(e.id);
        else selected.delete(e.id);
        all.checked = boxes.every((b) => b.checked);
        onSelect();
      } });
    boxes.push(input);
    return input;
  };
  const all = selected ? h("input", { type: "checkbox", class: "select", "aria-label": "Select all executions of the page",
    checked: rows.length > 0 && rows.every((e) => selected.has(e.id)),
    onchange: () => {
      rows.forEach((e) => (all.checked ? selected.add(e.id) : selected.delete(e.id)));
      boxes.forEach((b) => (b.checked = all.checked));
      onSelect();
    } }) : null;
  const view = table([selected ? h("span", {}, all, " Id") : "Id", ...(showFlow ? ["Namespace", "Flow"] : []), "State", "Started", "Duration", "Labels"],
    rows.map((e) => h("tr", {},
      h("td", { class: "col-id" }, selected ? box(e) : null, h("a", { href: executionHref(e), class: "mono" }, e.id)),
      showFlow ? [h("td", {}, e.namespace), h("td", {}, h("a", { href: flowHref(e.namespace, e.flowId) }, e.flowId))] : null,
      h("td", {}, stateBadge(e.state?.current)),
      h("td", {}, time(e.state?.startDate)),
      // Running and paused executions: the time so far (the stored duration is of the last change).
      h("td", {}, formatMs(TERMINAL.has(e.state?.current) ? durationMs(e.state?.duration) : stateDuration(e.state))),
      h("td", { class: "labels" }, (e.labels || []).filter((l) => !l.key.startsWith("system.")).map((l) => h("span", { class: "chip" }, `${l.key}:${l.value}`))))),
    showFlow ? "executions with-flow" : "executions");
  return view;
}

function triggerCard(flow, t) {
  const kind = triggerKind(t);
  const rows = [];
  if (kind === "webhook" && t.key) {
    const url = webhookUrl(flow, t.key);
    rows.push(h("p", {}, "URL"), copyBlock(url, "webhook URL"));
    rows.push(h("p", {}, "Call it"), copyBlock(`curl -X POST '${url}' -H 'Content-Type: application/json' -d '{"hello": "world"}'`, "curl command"));
  } else if (kind === "schedule") {
    rows.push(h("p", {}, "Cron ", h("code", {}, t.cron || "–"), t.timezone ? [" in ", h("code", {}, t.timezone)] : null));
  }
  const rest = Object.fromEntries(Object.entries(t).filter(([k]) => !["id", "type", "key", "cron", "timezone"].includes(k)));
  return h("div", { class: "card trigger" },
    h("div", { class: "card-head" }, triggerChip(t), h("strong", {}, t.id), h("code", { class: "muted type" }, t.type),
      t.disabled ? h("span", { class: "chip disabled" }, "disabled") : null),
    rows,
    Object.keys(rest).length ? h("details", {}, h("summary", {}, "Properties"), h("pre", { class: "json" }, show(rest))) : null);
}

function sourceTab(content, flow, editing) {
  if (!editing) {
    mount(content,
      h("div", { class: "section-head" }, h("h2", {}, "Source"),
        h("button", { type: "button", class: "btn", id: "edit-flow", onclick: () => sourceTab(content, flow, true) }, "Edit")),
      yamlView(flow.source || ""));
    return;
  }
  const problems = h("div", { class: "problems", "aria-live": "polite" });
  const editor = yamlEditor(flow.source || "", { onInput: () => (dirty = true) });
  let dirty = false;
  const save = h("button", { type: "submit", class: "btn primary", id: "save-flow" }, "Save");
  const form = h("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault();
    save.disabled = true;
    problems.replaceChildren();
    try {
      const saved = await api(`/flows/${enc(flow.namespace)}/${enc(flow.id)}`, {
        method: "PUT", body: editor.value(), headers: { "Content-Type": "application/x-yaml" },
      });
      toast(saved.revision === flow.revision ? "No change: same revision" : `Saved revision ${saved.revision}`, "success");
      if (saved.id !== flow.id || saved.namespace !== flow.namespace) go(flowHref(saved.namespace, saved.id, "source"));
      else go(flowHref(flow.namespace, flow.id, "source"), { replace: true });
    } catch (err) {
      save.disabled = false;
      showProblems(problems, editor, err);
    }
  } },
  h("div", { class: "section-head" }, h("h2", {}, "Edit source"),
    h("div", { class: "head-actions" },
      h("button", { type: "button", class: "btn", onclick: () => {
        if (!dirty || confirm("Discard your changes?")) sourceTab(content, flow, false);
      } }, "Cancel"),
      save)),
  h("p", { class: "help" }, "Saving (Ctrl+S) creates a new revision (PUT /api/v1/flows/{namespace}/{id}). Errors are marked at their line."),
  problems, editor.el);
  editor.textarea.addEventListener("keydown", (e) => {
    if (e.key === "s" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!save.disabled) form.requestSubmit();
    }
  });
  mount(content, form);
  editor.textarea.focus();
}

function showProblems(box, editor, err) {
  const messages = err instanceof ApiError && err.errors.length
    ? err.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message))
    : [err.message];
  const marks = new Map();
  const items = messages.map((m) => {
    const at = lineOf(m);
    if (at) marks.set(at.line, (marks.get(at.line) ? marks.get(at.line) + "\n" : "") + m);
    return h("li", {}, at
      ? h("button", { type: "button", class: "link", onclick: () => editor.goTo(at.line, at.column) }, `Line ${at.line}`)
      : null, at ? ": " : "", m);
  });
  editor.setMarks(marks);
  mount(box, h("div", { class: "alert error", role: "alert" },
    h("strong", {}, err.status === 422 ? "The flow is not valid" : "Cannot save"), h("ul", {}, items)));
}

async function revisionsTab(content, flow, q, signal) {
  mount(content, h("p", { class: "muted" }, "Loading revisions…"));
  let revisions;
  try {
    revisions = await api(`/flows/${enc(flow.namespace)}/${enc(flow.id)}/revisions`, { signal });
  } catch (e) {
    if (!signal.aborted) mount(content, errorBox(e, "Cannot list the revisions"));
    return;
  }
  revisions.sort((a, b) => b.revision - a.revision);
  const chosen = parseInt(q.get("revision") || "", 10) || revisions[0]?.revision;
  const shown = revisions.find((r) => r.revision === chosen) || revisions[0];
  const list = h("ol", { class: "revisions", reversed: true }, revisions.map((r) => h("li", {},
    h("a", { href: `${flowHref(flow.namespace, flow.id, "revisions")}?revision=${r.revision}`, "aria-current": r === shown ? "true" : null },
      `Revision ${r.revision}`), " ", r.updated ? time(r.updated) : null,
    r.revision === flow.revision ? h("span", { class: "chip" }, "current") : null)));
  const restore = shown && shown.revision !== flow.revision
    ? h("button", { type: "button", class: "btn", onclick: async (e) => {
      e.target.disabled = true;
      try {
        const saved = await api(`/flows/${enc(flow.namespace)}/${enc(flow.id)}`, {
          method: "PUT", body: shown.source, headers: { "Content-Type": "application/x-yaml" },
        });
        toast(`Restored as revision ${saved.revision}`, "success");
        go(flowHref(flow.namespace, flow.id, "revisions"), { replace: true });
      } catch (err) {
        e.target.disabled = false;
        toast(err.message, "error");
      }
    } }, `Restore revision ${shown.revision}`)
    : null;
  mount(content, h("div", { class: "split" },
    h("div", {}, h("h2", {}, "Revisions"), list),
    h("div", {}, h("div", { class: "section-head" }, h("h2", {}, `Revision ${shown?.revision}`), restore),
      shown ? yamlView(shown.source || "") : null)));
}

/** The Execute dialog: inputs form + labels; opens the execution page when created. */
export function openExecute(flow) {
  const form = inputsForm(flow.inputs || []);
  const labels = h("div", { class: "label-rows" });
  const addLabel = () => {
    const n = labels.children.length;
    const key = h("input", { type: "text", placeholder: "key", "aria-label": `Label ${n + 1} key` });
    const value = h("input", { type: "text", placeholder: "value", "aria-label": `Label ${n + 1} value` });
    const row = h("div", { class: "label-row" }, key, value,
      h("button", { type: "button", class: "btn ghost", "aria-label": `Remove label ${n + 1}`, onclick: () => row.remove() }, "✕"));
    labels.append(row);
    key.focus();
  };
  const message = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn primary", id: "execute-submit" }, "Execute");
  const el = h("form", { class: "stack execute-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    form.clearErrors();
    message.replaceChildren();
    const labelParams = [...labels.querySelectorAll(".label-row")]
      .map((r) => r.querySelectorAll("input"))
      .filter(([k]) => k.value.trim())
      .map(([k, v]) => `${k.value.trim()}:${v.value}`);
    submit.disabled = true;
    submit.textContent = "Starting…";
    const path = `/executions/${enc(flow.namespace)}/${enc(flow.id)}`;
    // Every failing input at once: Kestra's create names the first one only.
    const validate = (body) => api(`${path}/validate`, { method: "POST", body: [...body.keys()].length ? body : undefined })
      .catch(() => null);
    const again = () => {
      submit.disabled = false;
      submit.textContent = "Execute";
    };
    let body;
    try {
      const unreadable = form.showProblems();
      body = await form.formData((input, file) => {
        submit.textContent = `Uploading ${file.name}…`;
        return stageFile(flow.namespace, flow.id, input, file);
      });
      if (unreadable) {
        form.showChecks(await validate(body));
        again();
        return;
      }
      submit.textContent = "Starting…";
      const execution = await api(`${path}${query({ labels: labelParams })}`,
        { method: "POST", body: [...body.keys()].length ? body : undefined });
      close();
      go(executionHref(execution));
    } catch (err) {
      again();
      const invalid = err instanceof ApiError && err.status === 422;
      const placed = invalid && ((body && form.showChecks(await validate(body))) || form.showErrors(err));
      if (!placed) mount(message, errorBox(err));
    }
  } },
  message,
  (flow.inputs || []).length ? form.el : h("p", { class: "muted" }, "This flow has no inputs."),
  h("fieldset", { class: "labels-set" }, h("legend", {}, "Labels"), labels,
    h("button", { type: "button", class: "btn small", onclick: addLabel }, "Add a label")),
  h("div", { class: "actions" }, h("button", { type: "button", class: "btn", onclick: () => close() }, "Cancel"), submit));
  const { close } = openDialog(`Execute ${flow.namespace}.${flow.id}`, el, { wide: true });
  (form.controls[0]?.focus || (() => submit.focus()))();
}
