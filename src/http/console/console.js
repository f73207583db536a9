// callguard console: plain JavaScript over the /api/v1 endpoints, no
// framework and nothing loaded from elsewhere. Every API error is shown
// where the action was taken; nothing is swallowed. The token for changes
// lives in sessionStorage (this tab only) and travels as a bearer header.
// This file holds the helpers, the API client, messages and the router;
// trunks.js the Trunks screen (paged lists, bulk changes, rule dialog) and
// screens.js the other screens. They share the global scope, in that order.
"use strict";

const TOKEN_KEY = "callguard.token";
const PAGE = 50;
const state = { trunks: null, lists: null, protectReads: false, readOnly: null };

// ---------- small DOM helpers (text only: data never becomes markup) ----------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "");
const fmtDate = (t) => (t ? new Date(t).toLocaleDateString() : "");
const fmtNum = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n ?? ""));
/** A string usable in an id attribute (list names carry dots and other signs). */
const idOf = (s) => String(s).replace(/[^A-Za-z0-9_-]/g, (c) => "_" + c.charCodeAt(0).toString(16));
function badge(text, kind) { return h("span", { class: "badge " + kind }, text); }
// "unscreened": a session that never reached a decision (no connect reply, half an
// environment, refused): the call went on, so it is shown as a warning, never as allowed.
function verdictBadge(v) { return badge(v, v === "block" ? "block" : v === "unscreened" ? "warn" : "allow"); }
const NUMERIC = /^(Hits|Hits \(30 d\)|Calls|Blocked|Fail-open|Version|Line|Priority|Rules)$/;
/**
 * A table. `caption` is a string (shown as the caption) or `{ labelledby: id }`
 * naming the heading that labels it (aria-labelledby): every table has a name.
 */
function table(caption, headers, rows, opts) {
  opts = Object.assign({}, opts || {});
  const head = h("tr", {}, headers.map((x) => x instanceof Node ? x : h("th", { scope: "col", class: NUMERIC.test(x) ? "num" : null }, x)));
  const labels = headers.map((x) => (x instanceof Node ? x.dataset.label || "" : x));
  // Each cell carries its column's name, so a phone can show rows as cards.
  for (const tr of rows) {
    [...tr.children].forEach((cell, i) => { if (labels[i]) cell.setAttribute("data-label", labels[i]); });
  }
  let cap = null;
  if (caption && typeof caption === "object") opts["aria-labelledby"] = caption.labelledby;
  else if (caption) cap = h("caption", {}, caption);
  return h("div", { class: "table-wrap" },
    h("table", opts, cap, h("thead", {}, head), h("tbody", {}, rows)));
}

// ---------- token ----------
const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (t) => { sessionStorage.setItem(TOKEN_KEY, t); showAuth(); },
  clear: () => { sessionStorage.removeItem(TOKEN_KEY); showAuth(); },
};
function showAuth() {
  const has = !!token.get();
  $("auth-state").textContent = has ? "Token set for this tab" : "No token: read-only";
  $("auth-button").textContent = has ? "Forget token" : "Enter token";
}
/** Asks for the token; resolves true when one was entered. */
function askToken(why) {
  return new Promise((resolve) => {
    const d = $("token-dialog");
    $("token-why").textContent = why || "Changes need one of the tokens of http.tokens. It is kept in this tab only (session storage) and sent as Authorization: Bearer.";
    $("token-input").value = "";
    const done = (ok) => { d.close(); resolve(ok); };
    $("token-form").onsubmit = (e) => {
      e.preventDefault();
      const v = $("token-input").value.trim();
      if (!v) { $("token-input").focus(); return; }
      token.set(v);
      done(true);
    };
    $("token-cancel").onclick = () => done(false);
    d.oncancel = () => resolve(false);
    d.showModal();
    $("token-input").focus();
  });
}

// ---------- API ----------
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.details = (body && (body.details || body.problems)) || [];
    this.body = body;
  }
}
/**
 * Calls the API. A 401 (or a change without a token) asks for the token and
 * retries once. Resolves to the parsed JSON (or text); rejects with ApiError.
 */
async function api(method, path, body, opts) {
  opts = opts || {};
  // The tester is a POST that changes nothing: it asks for a token only if refused.
  const change = method !== "GET" && !opts.read;
  if (change && !token.get() && !(await askToken())) {
    throw new ApiError(401, { error: "no API token entered: the change was not sent" });
  }
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    if (token.get()) headers["Authorization"] = "Bearer " + token.get();
    let payload = body;
    if (body !== undefined && !(typeof body === "string") && !(body instanceof Blob)) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    if (opts.contentType) headers["Content-Type"] = opts.contentType;
    let res;
    try {
      res = await fetch(path, { method, headers, body: payload, cache: "no-store", credentials: "omit", signal: opts.signal });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, { error: "callguard did not answer (" + e.message + ")" });
    }
    const ct = res.headers.get("content-type") || "";
    const data = ct.includes("json") ? await res.json().catch(() => null) : await res.text();
    if (res.status === 401 && attempt === 0) {
      const why = token.get() ? "The token was refused (" + ((data && data.error) || "401") + "). Enter a valid one." : (change ? null : "Reading this needs a token: http.protect_reads is on.");
      if (await askToken(why)) continue;
    }
    if (!res.ok) throw new ApiError(res.status, typeof data === "object" && data ? data : { error: `HTTP ${res.status}: ${String(data).slice(0, 300)}` });
    if (data && typeof data === "object" && "read_only" in data) noteReadOnly(data);
    if (opts.raw) return { data, type: ct };
    return data;
  }
}
/** The error box: message, HTTP status and every detail line. */
function errorBox(err) {
  const status = err.status ? ` (HTTP ${err.status})` : "";
  return h("div", { class: "api-error", role: "alert" },
    h("strong", {}, String(err.message || err) + status),
    err.details && err.details.length ? h("ul", {}, err.details.map((d) => h("li", { class: "mono" }, d))) : null);
}
/**
 * The message line under the header: it stays until dismissed or replaced by
 * the next one (never on a timer). `opts.undo` adds an Undo button (an async
 * function), `opts.error` makes it an alert.
 */
function flash(msg, opts) {
  opts = opts || {};
  const f = $("flash");
  const box = h("div", { class: opts.error ? "err" : "ok", role: opts.error ? "alert" : "status" },
    h("span", { class: "flash-text" }, msg),
    opts.undo ? h("button", { type: "button", class: "small", id: "flash-undo", onclick: async (e) => {
      e.target.disabled = true;
      await opts.undo();
    } }, "Undo") : null,
    h("button", { type: "button", class: "small dismiss", "aria-label": "Dismiss message", onclick: () => {
      f.replaceChildren();
      const t = $("page-title"); if (t) t.focus({ preventScroll: true });
    } }, "×"));
  f.replaceChildren(box);
}
function confirmBox(text, yes) {
  return new Promise((resolve) => {
    const d = $("confirm-dialog");
    $("confirm-text").textContent = text;
    $("confirm-yes").textContent = yes || "Confirm";
    d.onclose = () => resolve(d.returnValue === "yes");
    d.returnValue = "";
    d.showModal();
    $("confirm-no").focus();
  });
}
async function loadTrunks(force) {
  if (!state.trunks || force) state.trunks = await api("GET", "/api/v1/trunks");
  return state.trunks;
}
/** Lists the API can change (list files), blacklists first. */
function editableLists(t) {
  const all = [];
  for (const l of t.system || []) all.push(Object.assign({ trunk: null }, l));
  for (const tr of t.trunks) for (const l of tr.lists) all.push(Object.assign({ trunk: tr.name }, l));
  return all.filter((l) => l.editable).sort((a, b) => (a.kind === "whitelist") - (b.kind === "whitelist"));
}
function listOptions(select, lists, selected, placeholder) {
  select.replaceChildren(...(placeholder ? [h("option", { value: "" }, placeholder)] : []),
    ...lists.map((l) => h("option", { value: l.name, selected: l.name === selected },
      `${l.name} (${l.kind}${l.trunk ? ", trunk " + l.trunk : ""})`)));
  if (placeholder && !selected) select.value = "";
}
/** Rows in a list, from /api/v1/lists or /api/v1/trunks (count, or the old full rules). */
function countOf(l) {
  if (typeof l.count === "number") return l.count;
  if (typeof l.rules === "number") return l.rules;
  return Array.isArray(l.rules) ? l.rules.length : 0;
}
/** Re-reads every list's row count from /api/v1/lists and updates the screen's counts. */
async function refreshCounts() {
  let l;
  try { l = await api("GET", "/api/v1/lists"); } catch (_) { return; }
  state.lists = l;
  for (const x of l.lists) {
    for (const el of document.querySelectorAll(`[data-count-for="${CSS.escape(x.name)}"]`)) el.textContent = fmtNum(countOf(x));
  }
}
/** Remembers a read-only answer (broken configuration on disk) and shows the banner. */
function noteReadOnly(data) {
  state.readOnly = data.read_only ? (data.problems || []) : null;
  showReadOnly();
}
function showReadOnly() {
  let b = $("read-only");
  if (!state.readOnly) { if (b) b.remove(); document.body.classList.remove("read-only"); return; }
  document.body.classList.add("read-only");
  const box = h("div", { id: "read-only", class: "api-error", role: "alert" },
    h("strong", {}, "Read-only: the configuration on disk is broken, so changes are refused until it is fixed. The rules in force are shown and can still be exported."),
    state.readOnly.length ? h("ul", {}, state.readOnly.map((p) => h("li", { class: "mono" }, p))) : null);
  if (b) b.replaceWith(box); else $("main").before(box);
}
/** The version to roll `list` back to, to undo the change answered by `res`. */
function undoVersion(res) {
  if (res && res.undo && res.undo.version) return res.undo.version;
  if (res && res.history_version > 1) return res.history_version - 1;
  return null;
}
/** An Undo offer for a change to `list`: rolls back and runs `after`. */
function undoOf(list, res, after) {
  const v = undoVersion(res);
  if (!v) return null;
  return async () => {
    try {
      const r = await api("POST", `/api/v1/lists/${encodeURIComponent(list)}/rollback`, { version: v });
      flash(`Undone: ${list} rolled back to version ${v} — rules version ${r.version} in force`);
      if (after) await after();
      refreshCounts();
    } catch (err) { flash(`Undo failed: ${err.message}`, { error: true }); }
  };
}

// ---------- screens and navigation ----------
const screens = {};
function page(title, ...content) {
  const main = $("main");
  main.replaceChildren(h("h1", { id: "page-title", tabindex: "-1" }, title), ...content);
  return main;
}
/** The screen and its parameters from the URL hash: `#trunks?list=spam&q=x&page=3`. */
function hashState() {
  const raw = (location.hash || "#overview").slice(1);
  const i = raw.indexOf("?");
  return { screen: i < 0 ? raw : raw.slice(0, i), params: new URLSearchParams(i < 0 ? "" : raw.slice(i + 1)) };
}
/** Writes a screen's state into the URL (a new history entry unless `replace`), without re-routing. */
function setHash(screen, params, replace) {
  const q = params.toString();
  const url = "#" + screen + (q ? "?" + q : "");
  if (url === location.hash) return;
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
}
async function route() {
  const { screen: name, params } = hashState();
  const screen = screens[name] ? name : "overview";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.screen === screen) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = `${document.querySelector(`#nav a[data-screen=${screen}]`).textContent} — callguard`;
  const run = screens[screen](params);
  // The heading is focused as soon as it is drawn (the screen may still be loading), without scrolling.
  const title = $("page-title");
  if (title) title.focus({ preventScroll: true });
  try { await run; }
  catch (err) { $("main").append(errorBox(err)); }
  const t = $("page-title");
  if (t && !$("main").contains(document.activeElement) && !document.querySelector("dialog[open]")) t.focus({ preventScroll: true });
}
window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  showAuth();
  api("GET", "/api/v1/status").then((s) => { $("build").textContent = "v" + s.build; }, (e) => { $("build").textContent = "(status: " + e.message + ")"; });
  $("auth-button").addEventListener("click", async () => { if (token.get()) { token.clear(); flash("Token forgotten: this tab is read-only"); } else if (await askToken()) flash("Token kept for this tab"); });
  // The skip link goes to the current screen's content, never to another screen.
  document.querySelector(".skip").addEventListener("click", (e) => {
    e.preventDefault();
    const t = $("page-title") || $("main");
    t.focus();
    t.scrollIntoView({ block: "start" });
  });
  route();
});
