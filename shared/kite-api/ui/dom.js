// DOM building and formatting helpers shared by every page.

/** Creates an element: h("a", {href: "/x", class: "btn"}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" || k === "checked" || k === "selected") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const TERMINAL = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"]);
export const STATES = ["CREATED", "QUEUED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "SUCCESS", "WARNING",
  "FAILED", "KILLED", "CANCELLED", "RETRYING", "RETRIED", "SKIPPED"];

export function stateBadge(state) {
  const s = state || "UNKNOWN";
  return h("span", { class: `state state-${s.toLowerCase()}` }, s);
}

export function enc(s) {
  return encodeURIComponent(s);
}

export function flowHref(ns, id, tab) {
  return `/ui/flows/edit/${enc(ns)}/${enc(id)}${tab ? "/" + tab : ""}`;
}

export function executionHref(e) {
  return `/ui/executions/${enc(e.namespace)}/${enc(e.flowId)}/${enc(e.id)}`;
}

/** Milliseconds of an ISO-8601 duration such as PT1M2.5S. */
export function durationMs(iso) {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$/.exec(iso || "");
  if (!m) return null;
  return (((+m[1] || 0) * 24 + (+m[2] || 0)) * 60 + (+m[3] || 0)) * 60000 + (+m[4] || 0) * 1000;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1) return "< 1 ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Duration of a state: from its start to its end, or to now while it runs. */
export function stateDuration(state) {
  if (!state?.startDate) return null;
  const end = state.endDate ? Date.parse(state.endDate) : Date.now();
  return Math.max(0, end - Date.parse(state.startDate));
}

export function formatDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function time(iso) {
  return h("time", { datetime: iso || "", title: iso || "" }, formatDate(iso));
}

export function shortId(id) {
  return id && id.length > 10 ? id.slice(0, 8) + "…" : id;
}

/** A message in an `alert` box, e.g. an API error. */
export function errorBox(err, prefix) {
  const text = err?.message || String(err);
  return h("div", { class: "alert error", role: "alert" }, prefix ? `${prefix}: ${text}` : text);
}

export function empty(text, ...more) {
  return h("div", { class: "empty" }, h("p", {}, text), ...more);
}

export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast ${kind}` }, text);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

/** Copies text; falls back to selecting it where the clipboard API is unavailable. */
export async function copyText(text, fallbackEl) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied");
  } catch {
    if (fallbackEl) {
      const range = document.createRange();
      range.selectNodeContents(fallbackEl);
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      toast("Selected: press Ctrl+C to copy");
    }
  }
}

export function copyBlock(text, label) {
  const code = h("code", {}, text);
  return h("div", { class: "copy" },
    h("pre", {}, code),
    h("button", { type: "button", class: "btn small", "aria-label": `Copy ${label}`, onclick: () => copyText(text, code) }, "Copy"));
}

/** JSON shown as text (strings as they are). */
export function show(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

/** A modal dialog: Escape and the Close button close it; focus returns where it was. */
export function openDialog(title, body, { wide = false, onClose } = {}) {
  const before = document.activeElement;
  const dialog = h("dialog", { class: wide ? "wide" : "", "aria-labelledby": "dialog-title" });
  const close = () => dialog.close();
  mount(dialog,
    h("div", { class: "dialog-head" },
      h("h2", { id: "dialog-title" }, title),
      h("button", { type: "button", class: "btn ghost", "aria-label": "Close", onclick: close }, "✕")),
    body);
  dialog.addEventListener("close", () => {
    dialog.remove();
    onClose?.();
    if (before && document.contains(before)) before.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

export function table(headers, rows, cls = "") {
  return h("div", { class: "table-wrap" },
    h("table", { class: cls },
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
}

/** Opens a page of the UI without reloading (the router in app.js renders it). */
export function go(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event("kite:navigate"));
}
