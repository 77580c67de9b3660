// Calls Kestra's HTTP API of this server. With basic auth the browser sends the
// credentials it asked for when the page opened; with a bearer token only, the
// token typed in the UI is kept in sessionStorage and sent as `Authorization`.

const TOKEN_KEY = "kite.apiToken";
const listeners = new Set();

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** `fn(error)` is called when the API answers 401 (a token is needed or wrong). */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

/** An API error: `message` is Kestra's message, `body` the JSON error if any. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }

  /** Kestra's validation errors: [{message, path}] (object or array in the JSON). */
  get errors() {
    const e = this.body?._embedded?.errors;
    if (!e) return [];
    return Array.isArray(e) ? e : [e];
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const token = getToken();
  if (token && !h.has("Authorization")) h.set("Authorization", `Bearer ${token}`);
  return h;
}

async function send(path, { method = "GET", body, headers: extra, signal } = {}) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, { method, body, headers: headers(extra), signal, credentials: "same-origin" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, `Cannot reach the server (${e.message})`);
  }
  if (response.ok) return response;
  let json = null;
  const text = await response.text().catch(() => "");
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  const message = json?.message || json?.detail || text || `${response.status} ${response.statusText}`;
  const error = new ApiError(response.status, message, json);
  if (response.status === 401) listeners.forEach((fn) => fn(error));
  throw error;
}

/** GET/POST/PUT/DELETE; returns parsed JSON, text, or null for an empty answer. */
export async function api(path, options) {
  const response = await send(path, options);
  if (response.status === 204 || response.status === 202) return null;
  const type = response.headers.get("content-type") || "";
  const text = await response.text();
  if (!text) return null;
  return type.includes("json") ? JSON.parse(text) : text;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Follows `GET /executions/{id}/follow` (server-sent events) with fetch, so that
 * the token header is sent too. Calls `onExecution` for every event; resolves when
 * the stream ends (the execution ended) or `signal` aborts; reconnects after a
 * dropped connection, or after the server's `retry` hint when it ends a stream early
 * (on AWS Lambda each answer carries the next change only).
 */
export async function follow(id, onExecution, signal) {
  let delay = 500;
  while (!signal.aborted) {
    let ended = false;
    let hinted = null;
    try {
      const response = await send(`/executions/${encodeURIComponent(id)}/follow`, {
        headers: { Accept: "text/event-stream" },
        signal,
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
          let eventId = "";
          const data = [];
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            else if (line.startsWith("id:")) eventId = line.slice(3).trim();
            else if (line.startsWith("retry:")) hinted = Number(line.slice(6).trim());
          }
          if (!data.length) continue;
          delay = 500;
          if (eventId === "end") ended = true;
          onExecution(JSON.parse(data.join("\n")));
        }
      }
      // The server closes the stream after the `end` event; a stream that closed
      // without one (a paused execution, a restart of the server) is opened again.
      if (ended) return;
      if (Number.isFinite(hinted) && hinted >= 0) {
        await new Promise((r) => setTimeout(r, hinted));
        continue;
      }
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && e.status >= 400 && e.status < 500) throw e;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5000);
  }
}

/**
 * Files larger than this go through the flow's uploads route instead of the multipart
 * body: a request to Kite on AWS Lambda carries at most about 4.4 MB of file.
 */
export const STAGE_ABOVE = 4 * 1024 * 1024;

/** A file name the uploads route accepts: one segment, no `..`, `:` or control characters. */
function stagingName(name) {
  let out = String(name || "").replace(/[/\\:\u0000-\u001f\u007f]/g, "_").replace(/\.{2,}/g, ".");
  const bytes = new TextEncoder();
  while (bytes.encode(out).length > 255) out = Array.from(out).slice(0, -1).join("");
  return out && out !== "." ? out : "file";
}

/**
 * Uploads `file` for the FILE input `input` of a flow on its own: asks the uploads route
 * where, then PUTs the bytes there; resolves to the staged `kestra:///…` URI, the input's
 * value. The credentials go only to this server's own URL, never to a storage URL (S3's
 * presigned one is signed itself).
 */
export async function stageFile(namespace, flowId, input, file) {
  const asked = await api(`/executions/${encodeURIComponent(namespace)}/${encodeURIComponent(flowId)}/uploads`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ input, filename: stagingName(file.name) }),
  });
  if (asked.maxSize != null && file.size > asked.maxSize) {
    throw new ApiError(413, `${file.name} is larger than the server accepts (${asked.maxSize} bytes)`);
  }
  const own = new URL(asked.uploadUrl, location.href).origin === location.origin;
  const type = { "Content-Type": "application/octet-stream" };
  let response;
  try {
    response = await fetch(asked.uploadUrl, {
      method: asked.method || "PUT",
      body: file,
      headers: own ? headers(type) : type,
      credentials: own ? "same-origin" : "omit",
    });
  } catch (e) {
    throw new ApiError(0, `Cannot upload ${file.name} (${e.message})`);
  }
  if (!response.ok) {
    const text = await response.text().catch(() => "");
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    const error = new ApiError(response.status, json?.message || `Cannot upload ${file.name}: ${response.status} ${response.statusText}`, json);
    if (own && response.status === 401) listeners.forEach((fn) => fn(error));
    throw error;
  }
  return asked.uri;
}

/** Downloads an API file; with a token the browser cannot follow a plain link. */
export async function download(path, filename) {
  const response = await send(path);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
