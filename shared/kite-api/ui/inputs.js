// Forms generated from Kestra inputs (a flow's `inputs`, a Pause task's
// `onResume`): one control per type, defaults prefilled, required marked; read
// back as multipart form data, as every other client sends them (files larger than
// STAGE_ABOVE are uploaded on their own first and sent as their staged URI).

import { ApiError, STAGE_ABOVE } from "./api.js";
import { h, show } from "./dom.js";

const pad = (n) => String(n).padStart(2, "0");

/** "2024-01-02T03:04:05Z" → "2024-01-02T04:04:05" (local time, for datetime-local). */
function toLocalInput(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function text(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : show(value);
}

function options(input) {
  const values = input.values || input.options || [];
  return Array.isArray(values) ? values.map(String) : [];
}

/** The control of one input: {row, read() → value | File | undefined, showError(msg)}. */
function control(input, index) {
  const type = String(input.type || "STRING").toUpperCase();
  const id = `in-${index}`;
  const required = input.required !== false;
  const def = input.defaults;
  const common = { id, name: input.id, "aria-describedby": `${id}-help ${id}-err`, "aria-required": required ? "true" : null };
  let el;
  let read = () => el.value;
  switch (type) {
    case "INT":
      el = h("input", { ...common, type: "number", step: "1", inputmode: "numeric", value: text(def),
        min: input.min ?? null, max: input.max ?? null });
      break;
    case "FLOAT":
      el = h("input", { ...common, type: "number", step: "any", inputmode: "decimal", value: text(def),
        min: input.min ?? null, max: input.max ?? null });
      break;
    case "BOOLEAN":
    case "BOOL":
      el = h("input", { ...common, type: "checkbox", checked: def === true || def === "true", class: "check" });
      read = () => (el.checked ? "true" : "false");
      break;
    case "DATE":
      el = h("input", { ...common, type: "date", value: text(def) });
      break;
    case "DATETIME":
      el = h("input", { ...common, type: "datetime-local", step: "1", value: def ? toLocalInput(def) : "" });
      read = () => (el.value ? new Date(el.value).toISOString() : "");
      break;
    case "TIME":
      el = h("input", { ...common, type: "time", step: "1", value: text(def) });
      read = () => (/^\d\d:\d\d$/.test(el.value) ? `${el.value}:00` : el.value);
      break;
    case "DURATION":
      el = h("input", { ...common, type: "text", value: text(def), placeholder: "PT5M", spellcheck: "false" });
      break;
    case "SELECT":
    case "ENUM": {
      const values = options(input);
      if (input.allowCustomValue) {
        const list = `${id}-list`;
        el = h("input", { ...common, type: "text", list, value: text(def) },);
        el = h("span", { class: "combo" }, el, h("datalist", { id: list }, values.map((v) => h("option", { value: v }))));
        const field = el.querySelector("input");
        read = () => field.value;
        el.focusTarget = field;
      } else {
        el = h("select", common,
          h("option", { value: "" }, required ? "Choose…" : "(none)"),
          values.map((v) => h("option", { value: v, selected: v === text(def) }, v)));
      }
      break;
    }
    case "MULTISELECT": {
      const values = options(input);
      const chosen = new Set(Array.isArray(def) ? def.map(String) : (() => {
        try {
          return JSON.parse(def || "[]").map(String);
        } catch {
          return [];
        }
      })());
      el = h("select", { ...common, multiple: true, size: Math.min(6, Math.max(2, values.length)) },
        values.map((v) => h("option", { value: v, selected: chosen.has(v) }, v)));
      read = () => {
        const picked = [...el.selectedOptions].map((o) => o.value);
        return picked.length ? JSON.stringify(picked) : "";
      };
      break;
    }
    case "ARRAY":
    case "JSON":
    case "YAML":
      el = h("textarea", { ...common, rows: type === "YAML" ? 5 : 4, spellcheck: "false", class: "mono",
        placeholder: type === "ARRAY" ? '["a", "b"]' : type === "JSON" ? '{"key": "value"}' : "key: value",
        value: type === "YAML" && def && typeof def === "object" ? JSON.stringify(def, null, 2) : text(def) });
      break;
    case "FILE":
      el = h("input", { ...common, type: "file" });
      read = () => el.files[0];
      break;
    case "SECRET":
      el = h("input", { ...common, type: "password", autocomplete: "off", value: text(def) });
      break;
    case "EMAIL":
      el = h("input", { ...common, type: "email", value: text(def) });
      break;
    case "URI":
      el = h("input", { ...common, type: "url", inputmode: "url", value: text(def), placeholder: "https://…" });
      break;
    default:
      el = h("input", { ...common, type: "text", value: text(def) });
  }
  const name = input.displayName || input.id;
  const error = h("p", { class: "field-error", id: `${id}-err`, hidden: true });
  const help = h("p", { class: "help", id: `${id}-help` },
    h("span", { class: "type" }, type),
    input.description ? ` ${input.description}` : "",
    !required ? " (optional)" : "");
  const checkbox = type === "BOOLEAN" || type === "BOOL";
  const label = h("label", { for: el.focusTarget?.id || id }, name, required ? h("span", { class: "req", title: "required" }, " *") : null);
  const row = h("div", { class: `field${checkbox ? " field-check" : ""}`, dataset: { input: input.id } },
    checkbox ? [el, label] : [label, el], help, error);
  const focusEl = el.focusTarget || el;
  return {
    input,
    row,
    read,
    /** What the browser could not parse: a number field holding "3e" reads as empty. */
    problem() {
      if (!focusEl.validity?.badInput) return "";
      return type === "INT" || type === "FLOAT"
        ? `Invalid input for \`${input.id}\`: not a number (${type === "INT" ? "an integer" : "a decimal number"} is expected)`
        : `Invalid input for \`${input.id}\`: the browser cannot read this value as ${type}`;
    },
    showError(message) {
      error.textContent = message;
      error.hidden = !message;
      row.classList.toggle("invalid", !!message);
      focusEl.setAttribute("aria-invalid", message ? "true" : "false");
    },
    focus: () => focusEl.focus(),
  };
}

/**
 * Builds the fields of `inputs`; returns {el, formData(stage?), showErrors(apiError) → shown?}.
 * `formData(stage)` resolves to the FormData; `stage(inputId, file)` uploads a file larger
 * than STAGE_ABOVE on its own and resolves to its URI (an error is placed on its field).
 */
export function inputsForm(inputs) {
  const controls = (inputs || []).map((input, i) => control(input, i));
  const el = h("div", { class: "fields" }, controls.map((c) => c.row));
  return {
    el,
    controls,
    async formData(stage) {
      const data = new FormData();
      for (const c of controls) {
        const value = c.read();
        if (value === undefined || value === null || value === "") continue;
        if (value instanceof File && stage && value.size > STAGE_ABOVE) {
          try {
            data.append(c.input.id, await stage(c.input.id, value));
          } catch (e) {
            if (!(e instanceof ApiError) || e.status === 0) throw e;
            throw new ApiError(422, e.message, { message: e.message, _embedded: { errors: [{ message: e.message, path: c.input.id }] } });
          }
        } else if (value instanceof File) data.append(c.input.id, value, value.name);
        else data.append(c.input.id, value);
      }
      return data;
    },
    clearErrors() {
      controls.forEach((c) => c.showError(""));
    },
    /** The values the browser could not parse, each shown on its field; true if any. */
    showProblems() {
      let first = null;
      for (const c of controls) {
        const message = c.problem();
        if (message) {
          c.showError(message);
          first = first || c;
        }
      }
      first?.focus();
      return first !== null;
    },
    /**
     * Shows the errors of Kestra's validate-inputs answer ({inputs: [{input, errors}]}),
     * every failing input at once, except where a browser problem is already shown.
     * Returns whether any error was shown.
     */
    showChecks(validation) {
      let first = controls.find((c) => c.problem());
      for (const check of validation?.inputs || []) {
        const c = controls.find((x) => x.input.id === check.input?.id);
        const message = (check.errors || []).map((e) => e.message).filter(Boolean).join("\n");
        if (!c || !message || c.problem()) continue;
        c.showError(message);
        first = first || c;
      }
      first?.focus();
      return !!first;
    },
    /** Puts each of Kestra's validation errors next to the input it names. */
    showErrors(error) {
      let shown = false;
      const errors = error.errors.length ? error.errors : [{ message: error.message, path: "" }];
      for (const e of errors) {
        const path = e.path || "";
        const c = controls.find((x) => x.input.id === path || path.endsWith(`.${x.input.id}`))
          || controls.find((x) => (e.message || "").includes(`\`${x.input.id}\``));
        if (c) {
          c.showError(e.message || error.message);
          if (!shown) c.focus();
          shown = true;
        }
      }
      return shown;
    },
  };
}
