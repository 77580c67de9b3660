// YAML syntax highlighting (keys, strings, numbers, booleans, comments, block
// scalars and Pebble `{{ }}` expressions), and the flow editor built on it: a
// textarea over the highlighted text, with line numbers and error markers.

import { h } from "./dom.js";

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
const esc = (s) => s.replace(/[&<>"]/g, (c) => ESC[c]);

function span(cls, text) {
  return text ? `<span class="y-${cls}">${esc(text)}</span>` : "";
}

/** A scalar value: quoted string, number, boolean/null, or plain text; with expressions. */
function scalar(text) {
  const trimmed = text.trim();
  if (!trimmed) return esc(text);
  const lead = text.slice(0, text.indexOf(trimmed));
  const tail = text.slice(lead.length + trimmed.length);
  let cls = "str";
  if (/^(true|false|null|~|yes|no|on|off)$/i.test(trimmed)) cls = "bool";
  else if (/^[-+]?(\d[\d_]*(\.\d*)?([eE][-+]?\d+)?|\.inf|\.nan|0x[0-9a-fA-F]+)$/.test(trimmed)) cls = "num";
  else if (/^[|>][-+0-9]*$/.test(trimmed)) cls = "block";
  else if (/^[&*][^\s]+$/.test(trimmed)) cls = "anchor";
  return esc(lead) + withExpressions(cls, trimmed) + esc(tail);
}

function withExpressions(cls, text) {
  let out = "";
  let last = 0;
  const re = /\{\{.*?\}\}|\{%.*?%\}/g;
  let m;
  while ((m = re.exec(text))) {
    out += span(cls, text.slice(last, m.index)) + span("expr", m[0]);
    last = m.index + m[0].length;
  }
  return out + span(cls, text.slice(last));
}

/** Splits "value # comment" where the # starts a comment (outside quotes). */
function splitComment(text) {
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:[{,]/.test(text[i - 1])) quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
      return [text.slice(0, i), text.slice(i)];
    }
  }
  return [text, ""];
}

/** HTML of each line of `source`, highlighted. */
export function highlightLines(source) {
  const lines = source.split("\n");
  const out = [];
  let blockIndent = -1; // inside a block scalar: lines indented more than this are text
  for (const line of lines) {
    const indent = line.length - line.trimStart().length;
    if (blockIndent >= 0) {
      if (line.trim() === "" || indent > blockIndent) {
        out.push(withExpressions("str", line));
        continue;
      }
      blockIndent = -1;
    }
    if (/^\s*#/.test(line)) {
      out.push(span("comment", line));
      continue;
    }
    if (/^(---|\.\.\.)\s*$/.test(line)) {
      out.push(span("doc", line));
      continue;
    }
    const [code, comment] = splitComment(line);
    let html = "";
    let rest = code;
    let keyIndent = indent;
    const dash = /^(\s*)(- )+/.exec(rest);
    if (dash) {
      html += esc(dash[1]) + span("dash", dash[0].slice(dash[1].length));
      keyIndent = dash[0].length;
      rest = rest.slice(dash[0].length);
    } else {
      html += esc(rest.slice(0, indent));
      rest = rest.slice(indent);
    }
    const key = /^("[^"]*"|'[^']*'|[^\s#'"{[][^:#]*?)(\s*):(\s|$)/.exec(rest);
    if (key) {
      html += span("key", key[1]) + esc(key[2]) + span("punct", ":");
      rest = rest.slice(key[0].length - key[3].length);
      if (/^\s*[|>][-+0-9]*\s*$/.test(rest)) blockIndent = keyIndent;
    } else if (dash && /^[|>][-+0-9]*\s*$/.test(rest)) {
      blockIndent = indent;
    }
    html += scalar(rest);
    out.push(html + span("comment", comment));
  }
  return out;
}

/** A read-only view of YAML with line numbers; `marks` maps line numbers to messages. */
export function yamlView(source, marks = new Map()) {
  const lines = highlightLines(source);
  const code = h("code", { class: "yaml" });
  code.innerHTML = lines.map((l, i) => `<span class="line${marks.has(i + 1) ? " err" : ""}">${l || " "}</span>`).join("");
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" },
    lines.map((_, i) => h("span", { class: marks.has(i + 1) ? "err" : "", title: marks.get(i + 1) || null }, String(i + 1))));
  return h("div", { class: "code-view", tabindex: "0", role: "region", "aria-label": "Flow source" }, gutter, h("pre", {}, code));
}

/**
 * An editor: a textarea over the highlighted text. Returns {el, textarea, value(),
 * setMarks(Map line → message), goTo(line, column)}.
 */
export function yamlEditor(source, { label = "Flow source", onInput } = {}) {
  const textarea = h("textarea", {
    class: "editor-input", spellcheck: "false", autocapitalize: "off", autocomplete: "off",
    wrap: "off", "aria-label": label, value: source,
  });
  const code = h("code", { class: "yaml" });
  const pre = h("pre", { class: "editor-highlight", "aria-hidden": "true" }, code);
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  let marks = new Map();
  const render = () => {
    const lines = highlightLines(textarea.value);
    code.innerHTML = lines.map((l, i) => `<span class="line${marks.has(i + 1) ? " err" : ""}">${l || " "}</span>`).join("");
    gutter.replaceChildren(...lines.map((_, i) =>
      h("span", { class: marks.has(i + 1) ? "err" : "", title: marks.get(i + 1) || null }, String(i + 1))));
    sync();
  };
  const sync = () => {
    pre.scrollTop = textarea.scrollTop;
    pre.scrollLeft = textarea.scrollLeft;
    gutter.scrollTop = textarea.scrollTop;
  };
  textarea.addEventListener("input", () => {
    render();
    onInput?.();
  });
  textarea.addEventListener("scroll", sync);
  textarea.addEventListener("keydown", (e) => {
    // Enter keeps the indentation of the current line (YAML is all indentation).
    if (e.key === "Enter" && !e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey) {
      const { selectionStart: s, value } = textarea;
      const lineStart = value.lastIndexOf("\n", s - 1) + 1;
      const current = value.slice(lineStart, s);
      let indent = /^\s*(- )?/.exec(current)[0].replace("- ", "  ");
      if (/:\s*$/.test(current)) indent += "  ";
      e.preventDefault();
      textarea.setRangeText("\n" + indent, s, textarea.selectionEnd, "end");
      textarea.dispatchEvent(new Event("input"));
    }
  });
  const el = h("div", { class: "editor" }, gutter, h("div", { class: "editor-body" }, pre, textarea));
  render();
  return {
    el,
    textarea,
    value: () => textarea.value,
    setMarks(m) {
      marks = m;
      render();
    },
    goTo(line, column = 1) {
      const lines = textarea.value.split("\n");
      let offset = 0;
      for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
      offset += Math.max(0, column - 1);
      textarea.focus();
      textarea.setSelectionRange(offset, offset);
      const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 20;
      textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
      sync();
    },
  };
}

/** Line and column named in a message: "(line 4, column 5)", "line 4 column 5" or "4:5". */
export function lineOf(message) {
  const m = /line (\d+),? column (\d+)/i.exec(message) || /line (\d+)/i.exec(message) || /\b(\d+):(\d+)\b/.exec(message);
  if (!m) return null;
  return { line: +m[1], column: m[2] ? +m[2] : 1 };
}
