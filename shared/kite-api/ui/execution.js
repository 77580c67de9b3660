// The execution page: live state (server-sent events), task-run timeline, logs
// with a level filter, outputs and files, inputs, labels, trigger; kill, restart,
// replay and resume (with the paused task's onResume inputs).

import { api, ApiError, download, follow, getToken, query, stageFile } from "./api.js";
import {
  durationMs, enc, errorBox, executionHref, flowHref, formatDate, formatMs, go, h, mount, openDialog, shortId, show,
  stateBadge, stateDuration, table, TERMINAL, time, toast,
} from "./dom.js";
import { inputsForm } from "./inputs.js";

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

export async function executionPage(main, { params: [ns, flowId, id], signal }) {
  document.title = `Execution ${shortId(id)} · Kite`;
  mount(main, h("p", { class: "muted" }, "Loading the execution…"));
  let execution;
  try {
    execution = await api(`/executions/${enc(id)}`, { signal });
    if (!ns) history.replaceState(null, "", executionHref(execution) + location.search + location.hash);
  } catch (e) {
    if (signal.aborted) return;
    mount(main, h("h1", {}, "Execution ", h("code", {}, id)),
      errorBox(e, e.status === 404 ? "No such execution" : "Cannot load the execution"),
      h("p", {}, h("a", { href: `/ui/executions${query({ namespace: ns, flowId })}` }, "Executions of this flow")));
    return;
  }

  const head = h("div", { class: "page-head" });
  const actions = h("div", { class: "head-actions", role: "group", "aria-label": "Actions" });
  const summary = h("dl", { class: "summary" });
  const timeline = h("div", { class: "timeline" });
  const logs = h("div", { class: "logs", "aria-live": "off" });
  const outputs = h("div", {});
  const inputs = h("div", {});
  const labels = h("div", {});
  const trigger = h("div", {});
  const level = h("select", { id: "log-level" }, LEVELS.map((l) => h("option", { value: l, selected: l === "INFO" }, l)));
  mount(main, head,
    h("div", { class: "exec-top" }, summary, actions),
    section("Timeline", "timeline-h", timeline),
    section("Logs", "logs-h", logs, h("div", { class: "log-tools" },
      h("label", { for: "log-level" }, "Level"), level,
      h("a", { class: "btn small", href: `/api/v1/logs/${enc(id)}/download`, download: `${id}.log`,
        onclick: (e) => tokenDownload(e, `/logs/${enc(id)}/download`, `${id}.log`) }, "Download"))),
    h("div", { class: "two-cols" },
      section("Outputs", "outputs-h", outputs),
      section("Inputs", "inputs-h", inputs)),
    h("div", { class: "two-cols" },
      section("Labels", "labels-h", labels),
      section("Trigger", "trigger-h", trigger)));

  let logsRequest = 0;
  let logsTimer = null;
  const loadLogs = async () => {
    const n = ++logsRequest;
    try {
      const lines = await api(`/logs/${enc(id)}${query({ minLevel: level.value })}`, { signal });
      if (n === logsRequest) renderLogs(logs, lines, execution);
    } catch (e) {
      if (!signal.aborted && n === logsRequest) mount(logs, errorBox(e, "Cannot load the logs"));
    }
  };
  const scheduleLogs = () => {
    if (logsTimer) return;
    logsTimer = setTimeout(() => {
      logsTimer = null;
      loadLogs();
    }, 250);
  };
  level.addEventListener("change", loadLogs);

  const update = (e) => {
    execution = e;
    renderHead(head, e);
    renderSummary(summary, e);
    renderActions(actions, e, { onChanged: (next) => (next.id === e.id ? restartFollow(next) : go(executionHref(next))) });
    renderTimeline(timeline, e);
    renderOutputs(outputs, e);
    renderInputs(inputs, e);
    renderLabels(labels, e);
    renderTrigger(trigger, e);
    scheduleLogs();
  };

  // A 1-second tick keeps the durations of a running execution moving.
  const tick = setInterval(() => {
    if (!TERMINAL.has(execution.state?.current)) {
      renderSummary(summary, execution);
      renderTimeline(timeline, execution);
    }
  }, 1000);
  signal.addEventListener("abort", () => clearInterval(tick));

  let following = false;
  const run = async () => {
    if (following) return;
    following = true;
    try {
      await follow(id, update, signal);
    } catch (e) {
      if (!signal.aborted) toast(`Live updates stopped: ${e.message}`, "error");
    } finally {
      following = false;
    }
    if (!signal.aborted) loadLogs();
  };
  const restartFollow = (next) => {
    update(next);
    run();
  };

  update(execution);
  await loadLogs();
  run();
}

function section(title, id, body, tools) {
  return h("section", { class: "panel", "aria-labelledby": id },
    h("div", { class: "section-head" }, h("h2", { id }, title), tools), body);
}

function renderHead(head, e) {
  mount(head, h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: "/ui/executions" }, "Executions"), " / ",
      h("a", { href: `/ui/flows?namespace=${enc(e.namespace)}` }, e.namespace), " / ",
      h("a", { href: flowHref(e.namespace, e.flowId) }, e.flowId)),
    h("h1", {}, h("span", { class: "mono" }, e.id), " ", h("span", { id: "execution-state" }, stateBadge(e.state?.current)))));
}

function renderSummary(dl, e) {
  const item = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
  mount(dl,
    item("Flow", h("a", { href: flowHref(e.namespace, e.flowId) }, `${e.namespace}.${e.flowId}`), ` rev ${e.flowRevision}`),
    item("Started", time(e.state?.startDate)),
    item("Ended", e.state?.endDate && TERMINAL.has(e.state.current) ? time(e.state.endDate) : "–"),
    item("Duration", formatMs(stateDuration(e.state))),
    item("Attempt", String(e.metadata?.attemptNumber ?? 1)),
    e.parentId ? item("Replay of", h("a", { href: executionHref({ ...e, id: e.parentId }) }, e.parentId)) : null,
    e.originalId && e.originalId !== e.id && e.originalId !== e.parentId ? item("Original", h("a", { href: executionHref({ ...e, id: e.originalId }) }, e.originalId)) : null,
    e.scheduleDate ? item("Scheduled", time(e.scheduleDate)) : null);
}

function renderActions(box, e, { onChanged }) {
  const s = e.state?.current;
  const terminal = TERMINAL.has(s);
  const act = (label, id, fn, cls = "btn") => h("button", { type: "button", class: cls, id, onclick: async (ev) => {
    const button = ev.currentTarget;
    button.disabled = true;
    try {
      await fn();
    } catch (err) {
      toast(`${label}: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  } }, label);
  mount(box,
    !terminal && s !== "KILLING" ? act("Kill", "kill", async () => {
      if (!confirm("Kill this execution?")) return;
      await api(`/executions/${enc(e.id)}/kill`, { method: "DELETE" });
      toast("Kill requested");
    }, "btn danger") : null,
    s === "PAUSED" ? act("Resume", "resume", () => openResume(e, onChanged), "btn primary") : null,
    terminal && s !== "SUCCESS" ? act("Restart", "restart", async () => {
      const next = await api(`/executions/${enc(e.id)}/restart`, { method: "POST" });
      toast("Restarted", "success");
      onChanged(next);
    }) : null,
    terminal ? act("Replay", "replay", async () => {
      const next = await api(`/executions/${enc(e.id)}/replay`, { method: "POST" });
      toast("Replayed as a new execution", "success");
      onChanged(next);
    }) : null,
    h("a", { class: "btn", href: flowHref(e.namespace, e.flowId) }, "Flow"));
}

/** The paused task's `onResume` inputs (from the flow revision of the execution). */
async function openResume(e, onChanged) {
  const flow = await api(`/flows/${enc(e.namespace)}/${enc(e.flowId)}${query({ revision: e.flowRevision })}`);
  const paused = (e.taskRunList || []).filter((t) => t.state?.current === "PAUSED").map((t) => t.taskId);
  const find = (tasks) => {
    for (const t of tasks || []) {
      if (paused.includes(t.id) && /Pause$/.test(t.type || "")) return t;
      for (const k of ["tasks", "then", "else", "errors", "finally", "afterExecution"]) {
        const f = find(t[k]);
        if (f) return f;
      }
      if (t.cases) for (const c of Object.values(t.cases)) {
        const f = find(c);
        if (f) return f;
      }
    }
    return null;
  };
  const task = find([...(flow.tasks || []), ...(flow.errors || []), ...(flow.finally || [])]);
  const onResume = task?.onResume || [];
  const form = inputsForm(onResume);
  const message = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn primary", id: "resume-submit" }, "Resume");
  const el = h("form", { class: "stack", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    form.clearErrors();
    message.replaceChildren();
    if (form.showProblems()) return;
    submit.disabled = true;
    try {
      const body = await form.formData((input, file) => stageFile(e.namespace, e.flowId, input, file));
      await api(`/executions/${enc(e.id)}/resume`, { method: "POST", body: [...body.keys()].length ? body : undefined });
      close();
      toast("Resumed", "success");
      onChanged(await api(`/executions/${enc(e.id)}`));
    } catch (err) {
      submit.disabled = false;
      const placed = err instanceof ApiError && err.status === 422 && form.showErrors(err);
      if (!placed) mount(message, errorBox(err));
    }
  } },
  message,
  h("p", {}, task ? ["Task ", h("code", {}, task.id), " is paused."] : "The execution is paused."),
  onResume.length ? form.el : h("p", { class: "muted" }, "No inputs are asked on resume."),
  h("div", { class: "actions" }, h("button", { type: "button", class: "btn", onclick: () => close() }, "Cancel"), submit));
  const { close } = openDialog("Resume the execution", el, { wide: onResume.length > 0 });
  (form.controls[0]?.focus || (() => submit.focus()))();
}

function renderTimeline(box, e) {
  const runs = e.taskRunList || [];
  if (!runs.length) {
    mount(box, h("p", { class: "muted" }, TERMINAL.has(e.state?.current) ? "No task ran." : "Waiting for the first task…"));
    return;
  }
  const start = Date.parse(e.state?.startDate || runs[0].state?.startDate);
  const end = e.state?.endDate && TERMINAL.has(e.state.current) ? Date.parse(e.state.endDate) : Date.now();
  const span = Math.max(1, end - start);
  const depth = new Map();
  for (const r of runs) depth.set(r.id, r.parentTaskRunId ? (depth.get(r.parentTaskRunId) ?? 0) + 1 : 0);
  mount(box, h("ol", { class: "gantt" }, runs.map((r) => {
    const s = r.state || {};
    const from = s.startDate ? Date.parse(s.startDate) : start;
    const to = s.endDate && TERMINAL.has(s.current) ? Date.parse(s.endDate) : (TERMINAL.has(s.current) ? from : Date.now());
    const bar = h("span", { class: `bar state-${String(s.current).toLowerCase()}` });
    const width = Math.max(0.5, Math.min(100, ((to - from) / span) * 100));
    bar.style.marginLeft = `${Math.max(0, Math.min(98, ((from - start) / span) * 100, 100 - width))}%`;
    bar.style.width = `${width}%`;
    const name = h("span", { class: "task" }, r.taskId, r.value !== undefined ? h("span", { class: "muted" }, ` [${r.value}]`) : null);
    name.style.paddingLeft = `${(depth.get(r.id) || 0) * 1}rem`;
    const attempts = (r.attempts || []).length;
    return h("li", { title: `${r.taskId}: ${s.current}` },
      name,
      h("span", { class: "track" }, bar),
      h("span", { class: "dur" }, formatMs(stateDuration(s) ?? durationMs(s.duration))),
      h("span", {}, stateBadge(s.current), attempts > 1 ? h("span", { class: "muted" }, ` ${attempts} attempts`) : null));
  })));
}

function renderLogs(box, lines, e) {
  if (!lines.length) {
    mount(box, h("p", { class: "muted" }, TERMINAL.has(e.state?.current) ? "No logs at this level." : "No logs yet."));
    return;
  }
  mount(box, h("ol", { class: "log-lines" }, lines.map((l) => h("li", { class: `log log-${String(l.level).toLowerCase()}` },
    h("time", { datetime: l.timestamp, title: l.timestamp }, formatDate(l.timestamp).slice(11)),
    h("span", { class: "lvl" }, l.level),
    h("span", { class: "task" }, l.taskId || l.triggerId || ""),
    h("span", { class: "msg" }, l.message)))));
}

function isFile(v) {
  return typeof v === "string" && v.startsWith("kestra:///");
}

function tokenDownload(ev, path, name) {
  if (!getToken()) return; // the browser's own credentials follow the link
  ev.preventDefault();
  download(path, name).catch((err) => toast(err.message, "error"));
}

function fileLink(e, uri) {
  const path = `/executions/${enc(e.id)}/file?path=${enc(uri)}`;
  const name = uri.split("/").pop();
  return h("a", { href: `/api/v1${path}`, download: name, class: "file", onclick: (ev) => tokenDownload(ev, path, name) }, `⬇ ${name}`);
}

/** A value with its kestra:/// files as download links. */
function valueView(e, v) {
  if (isFile(v)) return fileLink(e, v);
  if (v && typeof v === "object") {
    const files = [];
    JSON.stringify(v, (_, x) => (isFile(x) ? (files.push(x), x) : x));
    return h("div", {}, h("pre", { class: "json" }, show(v)), files.map((f) => h("div", {}, fileLink(e, f))));
  }
  return h("pre", { class: "json" }, show(v));
}

function kv(e, obj, { executionIds = false } = {}) {
  const view = (k, v) => (executionIds && k === "executionId" && typeof v === "string"
    ? h("a", { href: `/ui/executions/${enc(v)}`, class: "mono" }, v)
    : valueView(e, v));
  return table(["Name", "Value"], Object.entries(obj).map(([k, v]) => h("tr", {}, h("td", {}, h("code", {}, k)), h("td", {}, view(k, v)))));
}

function renderOutputs(box, e) {
  const parts = [];
  if (e.outputs && Object.keys(e.outputs).length) parts.push(h("h3", {}, "Flow outputs"), kv(e, e.outputs));
  for (const r of e.taskRunList || []) {
    if (r.outputs && Object.keys(r.outputs).length) {
      // A Subflow task run's `executionId` is its child execution.
      parts.push(h("h3", {}, r.taskId, r.value !== undefined ? ` [${r.value}]` : ""), kv(e, r.outputs, { executionIds: true }));
    }
  }
  mount(box, parts.length ? parts : h("p", { class: "muted" }, "No outputs."));
}

function renderInputs(box, e) {
  mount(box, e.inputs && Object.keys(e.inputs).length ? kv(e, e.inputs) : h("p", { class: "muted" }, "No inputs."));
}

function renderLabels(box, e) {
  const list = e.labels || [];
  mount(box, list.length ? h("ul", { class: "chips" }, list.map((l) => h("li", { class: "chip" }, `${l.key}: ${l.value}`)))
    : h("p", { class: "muted" }, "No labels."));
}

function renderTrigger(box, e) {
  const t = e.trigger;
  if (!t) {
    mount(box, h("p", { class: "muted" }, "Started manually (UI, API or command line)."));
    return;
  }
  mount(box, h("dl", { class: "summary" },
    h("dt", {}, "Id"), h("dd", {}, t.id),
    h("dt", {}, "Type"), h("dd", {}, h("code", {}, t.type))),
  t.variables && Object.keys(t.variables).length ? h("details", {}, h("summary", {}, "Variables"), valueView(e, t.variables)) : null);
}
