// callguard console: plain JavaScript over the /api/v1 endpoints, no
// framework and nothing loaded from elsewhere. Every API error is shown
// where the action was taken; nothing is swallowed. The token for changes
// lives in sessionStorage (this tab only) and travels as a bearer header.
"use strict";

const TOKEN_KEY = "callguard.token";
const state = { trunks: null, lists: null, protectReads: false };

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
function badge(text, kind) { return h("span", { class: "badge " + kind }, text); }
// "unscreened": a session that never reached a decision (no connect reply, half an
// environment, refused): the call went on, so it is shown as a warning, never as allowed.
function verdictBadge(v) { return badge(v, v === "block" ? "block" : v === "unscreened" ? "warn" : "allow"); }
function table(caption, headers, rows, opts) {
  const head = h("tr", {}, headers.map((x) => h("th", { scope: "col", class: /^(Hits|Calls|Blocked|Fail-open|Version|Line|Priority)$/.test(x) ? "num" : null }, x)));
  // Each cell carries its column's name, so a phone can show rows as cards.
  for (const tr of rows) {
    [...tr.children].forEach((cell, i) => { if (headers[i]) cell.setAttribute("data-label", headers[i]); });
  }
  return h("div", { class: "table-wrap" },
    h("table", opts || {}, caption ? h("caption", {}, caption) : null, h("thead", {}, head), h("tbody", {}, rows)));
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
    this.details = (body && body.details) || [];
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
      res = await fetch(path, { method, headers, body: payload, cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new ApiError(0, { error: "callguard did not answer (" + e.message + ")" });
    }
    const ct = res.headers.get("content-type") || "";
    const data = ct.includes("json") ? await res.json().catch(() => null) : await res.text();
    if (res.status === 401 && attempt === 0) {
      const why = token.get() ? "The token was refused (" + ((data && data.error) || "401") + "). Enter a valid one." : (change ? null : "Reading this needs a token: http.protect_reads is on.");
      if (await askToken(why)) continue;
    }
    if (!res.ok) throw new ApiError(res.status, typeof data === "object" && data ? data : { error: `HTTP ${res.status}: ${String(data).slice(0, 300)}` });
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
function flash(msg) {
  const f = $("flash");
  f.replaceChildren(h("div", { class: "ok" }, msg));
  clearTimeout(flash.t);
  flash.t = setTimeout(() => f.replaceChildren(), 8000);
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
  for (const l of t.system) all.push(Object.assign({ trunk: null }, l));
  for (const tr of t.trunks) for (const l of tr.lists) all.push(Object.assign({ trunk: tr.name }, l));
  return all.filter((l) => l.editable).sort((a, b) => (a.kind === "whitelist") - (b.kind === "whitelist"));
}
function listOptions(select, lists, selected) {
  select.replaceChildren(...lists.map((l) => h("option", { value: l.name, selected: l.name === selected },
    `${l.name} (${l.kind}${l.trunk ? ", trunk " + l.trunk : ""})`)));
}

// ---------- screens ----------
const screens = {};
function page(title, ...content) {
  const main = $("main");
  main.replaceChildren(h("h1", { id: "page-title" }, title), ...content);
  return main;
}

screens.overview = async () => {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  page("Overview", body);
  const today = new Date(); today.setHours(0, 0, 0, 0);
  let o;
  try { o = await api("GET", "/api/v1/overview?today=" + encodeURIComponent(today.toISOString())); }
  catch (e) { body.replaceChildren(errorBox(e)); return; }
  state.protectReads = !!o.protect_reads;
  $("build").textContent = "v" + o.build;
  const sum = (k, f) => o.trunks.reduce((n, t) => n + t[k][f], 0);
  const cards = h("div", { class: "cards" },
    h("div", { class: "card" }, h("div", { class: "muted" }, "Calls today"), h("div", { class: "big", id: "calls-today" }, sum("today", "calls"))),
    h("div", { class: "card" }, h("div", { class: "muted" }, "Blocked today"), h("div", { class: "big" }, sum("today", "blocked"))),
    h("div", { class: "card" }, h("div", { class: "muted" }, "Calls / blocked last hour"), h("div", { class: "big" }, `${sum("last_hour", "calls")} / ${sum("last_hour", "blocked")}`)),
    h("div", { class: "card" }, h("div", { class: "muted" }, "Failed open today"), h("div", { class: "big" }, sum("today", "fail_open"))));
  const rows = o.trunks.map((t) => h("tr", {}, h("th", { scope: "row" }, t.trunk),
    h("td", { class: "num" }, t.today.calls), h("td", { class: "num" }, t.today.blocked), h("td", { class: "num" }, t.today.fail_open),
    h("td", { class: "num" }, t.last_hour.calls), h("td", { class: "num" }, t.last_hour.blocked)));
  const reload = o.reload.ok
    ? h("p", {}, badge("OK", "allow"), ` rules version ${o.rules_version} (${o.rules} rules) loaded ${fmtTime(o.reload.at)}`)
    : h("div", {}, h("p", {}, badge("reload refused", "block"), ` at ${fmtTime(o.reload.at)}; rules version ${o.rules_version} stays in force`),
      h("ul", {}, o.reload.problems.map((p) => h("li", { class: "mono" }, p))));
  const l = o.listeners || {};
  body.replaceChildren(...[cards,
    o.log_error ? errorBox({ message: "Decision log: " + o.log_error }) : null,
    table("Calls per trunk (today since " + fmtTime(o.today_since) + ")", ["Trunk", "Calls", "Blocked", "Fail-open", "Calls (last hour)", "Blocked (last hour)"],
      rows.length ? rows : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No calls today."))]),
    h("div", { class: "grid2" },
      h("section", { class: "card", "aria-labelledby": "h-reload" }, h("h2", { id: "h-reload" }, "Last reload"), reload),
      h("section", { class: "card", "aria-labelledby": "h-svc" }, h("h2", { id: "h-svc" }, "Service"),
        h("dl", { class: "kv" },
          h("dt", {}, "Version"), h("dd", {}, o.build),
          h("dt", {}, "Rule source"), h("dd", { class: "mono" }, o.source || "local files"),
          h("dt", {}, "FastAGI"), h("dd", { class: "mono" }, l.agi || "off"),
          h("dt", {}, "Outbound ESL"), h("dd", { class: "mono" }, l.esl || "off"),
          h("dt", {}, "HTTP"), h("dd", { class: "mono" }, l.http || "off"),
          h("dt", {}, "Reads need a token"), h("dd", {}, o.protect_reads ? "yes (http.protect_reads)" : "no"),
          h("dt", {}, "Changes"), h("dd", {}, o.tokens_configured === false ? "disabled: no http.tokens configured" : "need an API token"))))].filter(Boolean));
};

function scheduleText(s) {
  if (!s) return "";
  if (s.schedule) return `${s.while} ${s.schedule}`;
  return "";
}
function modeText(t) {
  if (t.mode === "additive") return badge("additive", "info");
  if (t.mode === "exclusive") return badge("exclusive: whitelist only", "warn");
  return h("span", {}, badge("exclusive " + scheduleText(t.exclusive_schedule), "warn"), " ",
    t.exclusive_now ? badge("in force now", "block") : badge("not in force now", "allow"));
}

screens.trunks = async () => {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  page("Trunks", h("p", { class: "muted" }, "Lists in the order a call meets them: protected numbers, the system blacklist, then per trunk its whitelists and blacklists. Lists written in callguard.yaml are read-only here; list files can be edited."), body);
  let t;
  try { t = await loadTrunks(true); } catch (e) { body.replaceChildren(errorBox(e)); return; }
  const listTable = (l, trunk) => {
    const rows = l.rules.map((r) => h("tr", { class: r.enabled ? null : "disabled", "data-rule": r.name },
      h("td", { class: "num" }, r.priority), h("th", { scope: "row" }, r.name), h("td", {}, r.match_type || "auto"),
      h("td", { class: "mono" }, r.pattern), h("td", {}, r.action || (l.default_action ? l.default_action + " (list)" : "(default)")),
      h("td", {}, scheduleText(r.schedule)), h("td", {}, r.enabled ? "yes" : "no"), h("td", {}, r.notes),
      h("td", { class: "num hits" }, r.hits),
      h("td", { class: "actions" }, l.editable ? [
        h("button", { type: "button", class: "small", onclick: () => editRule(l, r), "aria-label": `Edit ${r.name}` }, "Edit"), " ",
        h("button", { type: "button", class: "small", onclick: () => toggleRule(l, r), "aria-label": `${r.enabled ? "Disable" : "Enable"} ${r.name}` }, r.enabled ? "Disable" : "Enable"), " ",
        h("button", { type: "button", class: "small", onclick: () => deleteRule(l, r), "aria-label": `Delete ${r.name}` }, "Delete")] : "")));
    return h("section", { class: "list", "data-list": l.name },
      h("div", { class: "list-head" }, h("h3", {}, `${l.name} `, badge(l.kind.replace("_", " "), l.kind === "whitelist" ? "allow" : (l.kind === "protected" ? "info" : "block")),
        l.path ? h("span", { class: "muted" }, " " + l.path) : h("span", { class: "muted" }, " (in callguard.yaml)")),
        l.editable ? h("button", { type: "button", class: "primary small", onclick: () => editRule(l, null), "aria-label": `Add rule to ${l.name}` }, "Add rule") : null),
      table(null, ["Priority", "Name", "Match", "Pattern", "Action", "Schedule", "Enabled", "Notes", "Hits", ""],
        rows.length ? rows : [h("tr", {}, h("td", { colspan: 10, class: "muted" }, "No rules."))]));
  };
  const sections = [h("section", { class: "card", "aria-labelledby": "h-system" }, h("h2", { id: "h-system" }, "All trunks"),
    listTable(t.protected), t.system.map((l) => listTable(l)))];
  for (const tr of t.trunks) {
    sections.push(h("section", { class: "card trunk", "data-trunk": tr.name, "aria-labelledby": "h-trunk-" + tr.name },
      h("div", { class: "trunk-head" }, h("h2", { id: "h-trunk-" + tr.name }, "Trunk " + tr.name), modeText(tr),
        tr.name === t.default_trunk ? badge("default trunk", "info") : null),
      h("p", { class: "muted" }, (tr.dids.length ? "DIDs " + tr.dids.join(", ") : "No DIDs") +
        (tr.blocked_action ? "; blocked calls: " + tr.blocked_action : "") + (tr.in_force ? "" : "; not yet in force (reload pending or refused)")),
      tr.lists.map((l) => listTable(l, tr))));
  }
  body.replaceChildren(h("p", { class: "muted" }, `Rules version ${t.version}. Hits: calls decided by the rule in the last ${t.hit_days} days.`), ...sections);
};

const FIELDS = ["rule_name", "pattern", "match_type", "action"];
/** Puts each API error detail at the field it is about. */
function showFieldErrors(err) {
  const lines = [err.message].concat(err.details || []);
  const placed = {};
  for (const line of err.details && err.details.length ? err.details : [err.message]) {
    const s = line.toLowerCase();
    let f = null;
    if (/already has a rule named|rule_name|missing name/.test(s)) f = "rule_name";
    else if (/match type|match_type/.test(s)) f = "match_type";
    else if (/action/.test(s)) f = "action";
    else if (/pattern|regex|wildcard|invalid number|digit/.test(s)) f = "pattern";
    if (f) (placed[f] = placed[f] || []).push(line.replace(/^request body:\d+:\s*/, ""));
  }
  for (const f of FIELDS) {
    const p = $("err-" + f);
    const input = document.querySelector(`#rule-form [name=${f}]`);
    p.textContent = (placed[f] || []).join(" ");
    input.setAttribute("aria-invalid", placed[f] ? "true" : "false");
  }
  const first = FIELDS.find((f) => placed[f]);
  $("rule-error").textContent = first ? err.message : lines.join(" — ");
  if (first) document.querySelector(`#rule-form [name=${first}]`).focus();
}
function clearFieldErrors() {
  for (const f of FIELDS) { $("err-" + f).textContent = ""; document.querySelector(`#rule-form [name=${f}]`).removeAttribute("aria-invalid"); }
  $("rule-error").textContent = "";
}
/** Add (rule null) or edit a rule of list l in the rule dialog. */
function editRule(l, r) {
  const d = $("rule-dialog");
  const f = $("rule-form");
  clearFieldErrors();
  $("rule-title").textContent = r ? `Edit rule ${r.name}` : "Add rule";
  $("rule-list-label").textContent = `List ${l.name} (${l.kind})`;
  const actions = (state.trunks && state.trunks.actions) || [];
  $("rule-action").replaceChildren(h("option", { value: "" }, l.default_action ? `(list default: ${l.default_action})` : "(list default)"),
    ...actions.map((a) => h("option", { value: a }, a)));
  f.rule_name.value = r ? r.name : "";
  f.pattern.value = r ? r.pattern : "";
  f.match_type.value = r ? r.match_type : "";
  f.action.value = r ? r.action : "";
  f.enabled.checked = r ? r.enabled : true;
  f.notes.value = r ? r.notes : "";
  $("rule-cancel").onclick = () => d.close();
  f.onsubmit = async (e) => {
    e.preventDefault();
    clearFieldErrors();
    const row = { rule_name: f.rule_name.value.trim(), pattern: f.pattern.value.trim(), match_type: f.match_type.value,
      action: f.action.value, enabled: f.enabled.checked, notes: f.notes.value };
    const path = r ? `/api/v1/lists/${encodeURIComponent(l.name)}/entries/${encodeURIComponent(r.name)}` : `/api/v1/lists/${encodeURIComponent(l.name)}/entries`;
    $("rule-save").disabled = true;
    try {
      const res = await api(r ? "PUT" : "POST", path, row);
      d.close();
      flash(`${l.name}: ${res.summary || "saved"} — rules version ${res.version} in force`);
      await screens.trunks();
    } catch (err) { showFieldErrors(err); }
    finally { $("rule-save").disabled = false; }
  };
  d.showModal();
  f.rule_name.focus();
}
async function toggleRule(l, r) {
  const row = { rule_name: r.name, pattern: r.pattern, match_type: r.match_type, action: r.action, enabled: !r.enabled, notes: r.notes };
  await change(() => api("PUT", `/api/v1/lists/${encodeURIComponent(l.name)}/entries/${encodeURIComponent(r.name)}`, row),
    (res) => `${r.name} ${r.enabled ? "disabled" : "enabled"} — rules version ${res.version} in force`, screens.trunks);
}
async function deleteRule(l, r) {
  if (!(await confirmBox(`Delete rule ${r.name} (${r.pattern}) from ${l.name}? The history keeps the old version for a rollback.`, "Delete rule"))) return;
  await change(() => api("DELETE", `/api/v1/lists/${encodeURIComponent(l.name)}/entries/${encodeURIComponent(r.name)}`),
    (res) => `${r.name} deleted — rules version ${res.version} in force`, screens.trunks);
}
/** Runs a change; on success flashes and redraws, on failure shows the error at the top of the screen. */
async function change(run, message, redraw) {
  try {
    const res = await run();
    flash(message(res));
    if (redraw) await redraw();
  } catch (err) {
    const main = $("main");
    main.querySelectorAll(".change-error").forEach((x) => x.remove());
    const box = errorBox(err); box.classList.add("change-error");
    main.querySelector("h1").after(box);
  }
}

screens.tester = async () => {
  const out = h("div", { id: "test-result", "aria-live": "polite" });
  const pout = h("div", { id: "pattern-result", "aria-live": "polite" });
  const trunkSel = h("select", { id: "t-trunk", name: "trunk" }, h("option", { value: "" }, "(by DID, or the default trunk)"));
  const form = h("form", { class: "inline noprint", id: "test-form" },
    h("div", { class: "field" }, h("label", { for: "t-caller" }, "Caller number"), h("input", { id: "t-caller", name: "caller", required: true, placeholder: "+442071234567" })),
    h("div", { class: "field" }, h("label", { for: "t-trunk" }, "Trunk"), trunkSel),
    h("div", { class: "field" }, h("label", { for: "t-did" }, "or DID dialled"), h("input", { id: "t-did", name: "did", placeholder: "+18005550100" })),
    h("div", { class: "field" }, h("label", { for: "t-at" }, "Time (empty: now)"), h("input", { id: "t-at", name: "at", type: "datetime-local" })),
    h("div", { class: "field check" }, h("input", { type: "checkbox", id: "t-anon", name: "anonymous" }), h("label", { for: "t-anon" }, "Caller ID hidden")),
    h("button", { type: "submit", class: "primary", id: "t-run" }, "Explain decision"));
  const pform = h("form", { class: "noprint", id: "pattern-form" },
    h("div", { class: "grid2" },
      h("div", {},
        h("div", { class: "field" }, h("label", { for: "p-pattern" }, "Pattern"), h("input", { id: "p-pattern", required: true, placeholder: "+1555_______" })),
        h("div", { class: "field" }, h("label", { for: "p-match" }, "Match type"), h("select", { id: "p-match" },
          ["", "exact", "starts_with", "contains", "ends_with", "wildcard", "regex"].map((m) => h("option", { value: m }, m || "(from the pattern)"))))),
      h("div", { class: "field" }, h("label", { for: "p-numbers" }, "Numbers, one per line"), h("textarea", { id: "p-numbers", required: true, placeholder: "+15551234567\n+442071234567" }))),
    h("button", { type: "submit", class: "primary", id: "p-run" }, "Test pattern"));
  page("Pattern tester",
    h("section", { "aria-labelledby": "h-decide" }, h("h2", { id: "h-decide" }, "Why would this call be blocked?"), form, out),
    h("section", { "aria-labelledby": "h-pattern" }, h("h2", { id: "h-pattern" }, "A pattern against several numbers"), pform, pout));
  form.onsubmit = async (e) => {
    e.preventDefault();
    const req = { caller: $("t-caller").value.trim(), anonymous: $("t-anon").checked };
    if (trunkSel.value) req.trunk = trunkSel.value;
    if ($("t-did").value.trim()) req.did = $("t-did").value.trim();
    if ($("t-at").value) req.at = new Date($("t-at").value).toISOString();
    out.replaceChildren(h("p", { class: "muted" }, "Deciding…"));
    try { out.replaceChildren(explainView(await api("POST", "/api/v1/test", req, { read: true }))); }
    catch (err) { out.replaceChildren(err.body && err.body.caller && err.body.error ? errorBox({ message: `${err.body.caller}: ${err.body.error}`, status: err.status }) : errorBox(err)); }
  };
  pform.onsubmit = async (e) => {
    e.preventDefault();
    const numbers = $("p-numbers").value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
    const req = { pattern: $("p-pattern").value, numbers };
    if ($("p-match").value) req.match = $("p-match").value;
    pout.replaceChildren(h("p", { class: "muted" }, "Testing…"));
    try {
      const r = await api("POST", "/api/v1/test", req, { read: true });
      pout.replaceChildren(h("p", {}, h("strong", {}, `${r.pattern}`), ` (${r.match_type}): ${r.explain}`),
        table(null, ["Number", "Result", "Captures", "Time per match"], r.results.map((x) => h("tr", {},
          h("td", { class: "mono" }, x.number),
          h("td", {}, x.error ? h("span", { class: "error" }, x.error) : (x.matched ? badge("matches", "block") : badge("no match", "allow"))),
          h("td", { class: "mono" }, Object.entries(x.captures || {}).map(([k, v]) => `${k}=${v}`).join(" ")),
          h("td", { class: "num" }, x.eval_ns !== undefined ? `${x.eval_ns} ns` : "")))));
    } catch (err) { pout.replaceChildren(errorBox(err)); }
  };
  try {
    const t = await loadTrunks();
    trunkSel.append(...t.trunks.map((x) => h("option", { value: x.name }, x.name)));
  } catch (err) { out.replaceChildren(errorBox(err)); }
};
function explainView(r) {
  const caps = Object.entries(r.captures || {});
  return h("div", { class: "card", id: "explanation" },
    h("p", { class: "verdict" }, verdictBadge(r.verdict), " ", r.verdict === "block" ? "Blocked" : "Allowed", ` — ${r.action}`),
    h("p", { id: "t-reason" }, r.reason),
    h("dl", { class: "kv" },
      h("dt", {}, "Caller"), h("dd", { class: "mono" }, r.caller),
      h("dt", {}, "E.164"), h("dd", { class: "mono" }, r.normalized || "(none)"),
      h("dt", {}, "Anonymous"), h("dd", {}, r.anonymous ? "yes" : "no"),
      h("dt", {}, "Trunk"), h("dd", {}, r.trunk),
      ...(r.reputation ? [h("dt", {}, "Reputation"), h("dd", { id: "t-reputation" }, r.reputation.note)] : []),
      h("dt", {}, "Decided by"), h("dd", {}, r.rule ? `rule ${r.rule} of the ${r.list}` : r.list),
      r.pattern ? [h("dt", {}, "Pattern"), h("dd", { class: "mono" }, `${r.pattern} (${r.match_type})`)] : null,
      r.matched_on ? [h("dt", {}, "Matched on"), h("dd", {}, r.matched_on)] : null,
      h("dt", {}, "Exclusive mode"), h("dd", {}, r.exclusive_active ? "in force at that time" : "not in force at that time"),
      caps.length ? [h("dt", {}, "Captures"), h("dd", { class: "mono" }, caps.map(([k, v]) => `${k}=${v}`).join(" "))] : null,
      h("dt", {}, "At"), h("dd", {}, fmtTime(r.at)),
      h("dt", {}, "Time taken"), h("dd", {}, `${(r.eval_ns / 1000).toFixed(1)} µs`),
      h("dt", {}, "Rules version"), h("dd", {}, r.rules_version)),
    r.skipped && r.skipped.length ? table("Rules that matched but did not decide", ["Rule", "List", "Why not"],
      r.skipped.map((s) => h("tr", {}, h("td", {}, s.rule), h("td", {}, s.list), h("td", {}, s.why)))) : h("p", { class: "muted" }, "No other rule matched."));
}

screens.calls = async () => {
  const out = h("div", { id: "calls-result" });
  const f = h("form", { class: "inline noprint", id: "calls-form" },
    h("div", { class: "field" }, h("label", { for: "c-since" }, "Since"), h("input", { id: "c-since", name: "since", value: "24h", size: 12, "aria-describedby": "c-since-help" })),
    h("div", { class: "field" }, h("label", { for: "c-verdict" }, "Verdict"), h("select", { id: "c-verdict", name: "verdict" },
      h("option", { value: "" }, "any"), h("option", { value: "block" }, "blocked"), h("option", { value: "allow" }, "allowed"), h("option", { value: "unscreened" }, "not screened"))),
    h("div", { class: "field" }, h("label", { for: "c-trunk" }, "Trunk"), h("input", { id: "c-trunk", name: "trunk", size: 10 })),
    h("div", { class: "field" }, h("label", { for: "c-rule" }, "Rule"), h("input", { id: "c-rule", name: "rule", size: 12 })),
    h("div", { class: "field" }, h("label", { for: "c-caller" }, "Caller"), h("input", { id: "c-caller", name: "caller", size: 14 })),
    h("div", { class: "field" }, h("label", { for: "c-limit" }, "Rows"), h("input", { id: "c-limit", name: "limit", value: "100", size: 5, inputmode: "numeric" })),
    h("button", { type: "submit", class: "primary" }, "Show calls"));
  page("Call log", h("p", { class: "muted", id: "c-since-help" }, "Since: 1h, 24h, 7d, a date (2026-11-01) or a time (RFC 3339). Newest first."), f, out);
  const run = async () => {
    const q = new URLSearchParams();
    for (const k of ["since", "verdict", "trunk", "rule", "caller", "limit"]) if (f[k].value.trim()) q.set(k, f[k].value.trim());
    out.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    let calls;
    try { calls = await api("GET", "/api/v1/calls?" + q); } catch (err) { out.replaceChildren(errorBox(err)); return; }
    const rows = calls.map((c) => h("tr", { "data-call": c.unique_id },
      h("td", {}, fmtTime(c.time)), h("td", {}, c.trunk), h("td", { class: "mono" }, c.anonymous ? "anonymous" : c.caller, c.caller_name ? h("div", { class: "muted" }, c.caller_name) : null),
      h("td", {}, verdictBadge(c.verdict), c.fail_open ? [" ", badge("failed open", "warn")] : null),
      h("td", {}, c.rule ? `${c.rule}` : "", h("div", { class: "muted" }, c.list_name || c.list)), h("td", {}, c.action),
      h("td", {}, c.reason), h("td", {}, c.end_state || ""),
      h("td", { class: "actions" }, c.anonymous ? h("span", { class: "muted" }, "hidden number") :
        h("button", { type: "button", class: "small", onclick: () => blockCaller(c), "aria-label": `Block caller ${c.caller_e164 || c.caller}` }, "Block caller"))));
    out.replaceChildren(table(`${calls.length} call(s)`, ["Time", "Trunk", "Caller", "Verdict", "Rule / list", "Action", "Reason", "Ended", ""],
      rows.length ? rows : [h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No calls match."))]));
  };
  f.onsubmit = (e) => { e.preventDefault(); run(); };
  await run();
};
async function blockCaller(c) {
  let t;
  try { t = await loadTrunks(); } catch (err) { return change(() => Promise.reject(err)); }
  const lists = editableLists(t).filter((l) => l.kind !== "whitelist");
  const d = $("block-dialog");
  $("block-text").textContent = `Caller ${c.caller_e164 || c.caller} (call ${c.unique_id}, trunk ${c.trunk}) becomes an exact rule of the list you choose.`;
  const preferred = lists.find((l) => l.trunk === c.trunk) || lists[0];
  listOptions($("block-list"), lists, preferred && preferred.name);
  $("block-name").value = "";
  $("block-error").textContent = "";
  $("block-cancel").onclick = () => d.close();
  $("block-form").onsubmit = async (e) => {
    e.preventDefault();
    const body = { list: $("block-list").value };
    if ($("block-name").value.trim()) body.name = $("block-name").value.trim();
    $("block-save").disabled = true;
    try {
      const res = await api("POST", `/api/v1/calls/${encodeURIComponent(c.unique_id)}/block`, body);
      d.close();
      state.trunks = null;
      flash(res.message + (res.version ? ` — rules version ${res.version} in force` : ""));
    } catch (err) {
      $("block-error").textContent = [err.message].concat(err.details || []).join(" — ");
    } finally { $("block-save").disabled = false; }
  };
  if (!lists.length) $("block-error").textContent = "No list file to add to: every list is written in callguard.yaml (read-only here).";
  d.showModal();
  $("block-list").focus();
}

const FORMATS = ["csv", "json", "xml"];
function formatOf(name) { const m = /\.(csv|json|xml)$/i.exec(name || ""); return m ? m[1].toLowerCase() : ""; }
const CT = { csv: "text/csv", json: "application/json", xml: "application/xml" };
async function download(list, fmt) {
  try {
    const { data } = await api("GET", `/api/v1/lists/${encodeURIComponent(list)}?format=${fmt}`, undefined, { raw: true });
    const blob = new Blob([typeof data === "string" ? data : JSON.stringify(data, null, 2)], { type: CT[fmt] });
    const a = h("a", { href: URL.createObjectURL(blob), download: `${list}.${fmt}` });
    document.body.append(a); a.click(); a.remove();
    flash(`Exported ${list} as ${fmt.toUpperCase()}`);
  } catch (err) { change(() => Promise.reject(err)); }
}

screens.import = async () => {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  page("Import / export", body);
  let t;
  try { t = await loadTrunks(true); } catch (e) { body.replaceChildren(errorBox(e)); return; }
  const lists = editableLists(t);
  const sel = h("select", { id: "i-list", required: true });
  listOptions(sel, lists);
  const fileIn = h("input", { type: "file", id: "i-file", accept: ".csv,.json,.xml,text/csv,application/json,application/xml", required: true });
  const fmt = h("select", { id: "i-format" }, h("option", { value: "" }, "(from the file name)"), FORMATS.map((x) => h("option", { value: x }, x.toUpperCase())));
  const dup = h("fieldset", { class: "field" }, h("legend", {}, "When a rule name is taken"),
    [["skip", "Skip: keep the existing rule"], ["overwrite", "Overwrite it"], ["rename", "Rename: keep both (NAME-2)"]].map(([v, label], i) =>
      h("div", { class: "field check" }, h("input", { type: "radio", name: "dup", id: "dup-" + v, value: v, checked: i === 0 }), h("label", { for: "dup-" + v }, label))));
  const preview = h("div", { id: "preview", "aria-live": "polite" });
  const form = h("form", { id: "import-form", class: "card noprint" },
    h("h2", {}, "Import"),
    h("div", { class: "grid2" },
      h("div", {}, h("div", { class: "field" }, h("label", { for: "i-list" }, "Into list"), sel),
        h("div", { class: "field" }, h("label", { for: "i-file" }, "File (CSV, JSON or XML)"), fileIn),
        h("div", { class: "field" }, h("label", { for: "i-format" }, "Format"), fmt)),
      dup),
    h("button", { type: "submit", class: "primary", id: "i-preview" }, "Preview import"));
  let pending = null;
  const send = async (dryRun, skipInvalid) => {
    const file = fileIn.files[0];
    if (!file) throw new ApiError(0, { error: "choose a file to import" });
    const f = fmt.value || formatOf(file.name);
    if (!f) throw new ApiError(0, { error: `cannot tell the format of ${file.name}: choose CSV, JSON or XML` });
    const mode = form.querySelector("input[name=dup]:checked").value;
    const q = new URLSearchParams({ on_duplicate: mode, dry_run: dryRun, skip_invalid: skipInvalid, format: f });
    return api("POST", `/api/v1/lists/${encodeURIComponent(sel.value)}/import?${q}`, file, { contentType: CT[f] });
  };
  form.onsubmit = async (e) => {
    e.preventDefault();
    preview.replaceChildren(h("p", { class: "muted" }, "Reading the file…"));
    try { pending = await send(true, false); preview.replaceChildren(previewView(pending)); }
    catch (err) { preview.replaceChildren(errorBox(err)); }
  };
  const previewView = (p) => {
    const skipBox = h("input", { type: "checkbox", id: "i-skip-invalid" });
    const confirmBtn = h("button", { type: "button", class: "primary", id: "i-confirm", disabled: p.invalid_count > 0 }, "Confirm import");
    skipBox.onchange = () => { confirmBtn.disabled = p.invalid_count > 0 && !skipBox.checked; };
    confirmBtn.onclick = async () => {
      confirmBtn.disabled = true;
      try {
        const r = await send(false, skipBox.checked);
        state.trunks = null;
        preview.replaceChildren(h("p", { class: "card", role: "status" }, badge("imported", "allow"), ` into ${r.list}: ${r.result ? r.result.summary : ""} — ${r.rules_after} rules, rules version ${r.result ? r.result.version : "?"} in force`));
      } catch (err) { preview.append(errorBox(err)); confirmBtn.disabled = false; }
    };
    const conflicts = [].concat(p.overwritten.map((n) => [n, "overwrite"]), p.skipped.map((n) => [n, "skip"]), p.renamed.map((r) => [r.from, "rename to " + r.to]));
    return h("section", { class: "card", "aria-labelledby": "h-preview" }, h("h2", { id: "h-preview" }, `Preview: ${p.list}`),
      h("p", {}, `${p.rows_read} rows read; ${p.to_add.length} to add, ${conflicts.length} conflicts, ${p.invalid_count} invalid; ${p.rules_after} rules after the import.`),
      p.to_add.length ? h("details", {}, h("summary", {}, `To add (${p.to_add.length})`), h("p", { class: "mono" }, p.to_add.slice(0, 200).join(", "))) : null,
      conflicts.length ? table("Conflicts (rule names already taken)", ["Rule", "What happens"], conflicts.map(([n, w]) => h("tr", {}, h("td", {}, n), h("td", {}, w)))) : null,
      p.invalid.length ? table("Invalid rows (not imported)", ["Line", "Reason"], p.invalid.map((x) => h("tr", { class: "invalid-row" }, h("td", { class: "num" }, x.line), h("td", {}, x.reason))), { id: "invalid-rows" }) : null,
      p.invalid_count ? h("div", { class: "field check" }, skipBox, h("label", { for: "i-skip-invalid" }, "Import the valid rows and leave the invalid ones out")) : null,
      h("div", { class: "buttons" }, confirmBtn, h("button", { type: "button", onclick: () => { preview.replaceChildren(); pending = null; } }, "Cancel")));
  };
  const exportRows = [];
  const exportable = [t.protected].concat(t.system, ...t.trunks.map((x) => x.lists));
  for (const l of exportable) {
    exportRows.push(h("tr", {}, h("th", { scope: "row" }, l.name), h("td", {}, l.kind.replace("_", " ")), h("td", { class: "num" }, l.rules.length),
      h("td", { class: "actions" }, FORMATS.map((x) => [h("button", { type: "button", class: "small", onclick: () => download(l.name, x), "aria-label": `Export ${l.name} as ${x.toUpperCase()}` }, x.toUpperCase()), " "]))));
  }
  body.replaceChildren(form, preview, h("h2", {}, "Export"), table(null, ["List", "Kind", "Rules", "Download"], exportRows));
};

screens.history = async () => {
  const out = h("div", { id: "history-result" });
  const sel = h("select", { id: "h-list" }, h("option", { value: "" }, "(every list)"));
  const f = h("form", { class: "inline noprint" }, h("div", { class: "field" }, h("label", { for: "h-list" }, "List"), sel),
    h("button", { type: "submit", class: "primary" }, "Show versions"));
  page("History", h("p", { class: "muted" }, "Every change to a list file is a version: by whom (API token name, cli, file, git, subscription) and what changed. Rolling back writes the old content as a new version."), f, out);
  try {
    const l = await api("GET", "/api/v1/lists");
    sel.append(...l.lists.filter((x) => x.editable).map((x) => h("option", { value: x.name }, x.name)));
  } catch (err) { out.replaceChildren(errorBox(err)); return; }
  const run = async () => {
    out.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    let v;
    try { v = await api("GET", "/api/v1/history?limit=200" + (sel.value ? "&list=" + encodeURIComponent(sel.value) : "")); }
    catch (err) { out.replaceChildren(errorBox(err)); return; }
    const latest = {};
    for (const x of v.versions) if (!(x.list in latest)) latest[x.list] = x.version;
    out.replaceChildren(table(null, ["Version", "Time", "List", "Author", "Changes", ""], v.versions.length ? v.versions.map((x) => h("tr", { "data-version": x.version, "data-list": x.list },
      h("td", { class: "num" }, x.version), h("td", {}, fmtTime(x.time)), h("td", {}, x.list), h("td", {}, x.author), h("td", {}, x.summary),
      h("td", { class: "actions" }, latest[x.list] === x.version ? h("span", { class: "muted" }, "current") :
        h("button", { type: "button", class: "small", onclick: () => rollback(x), "aria-label": `Roll back ${x.list} to version ${x.version}` }, "Roll back to this")))) :
      [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No versions recorded yet."))]));
  };
  f.onsubmit = (e) => { e.preventDefault(); run(); };
  async function rollback(x) {
    if (!(await confirmBox(`Roll list ${x.list} back to version ${x.version} (${fmtTime(x.time)}, by ${x.author})? Its rules are replaced by that version's at once.`, "Roll back"))) return;
    await change(() => api("POST", `/api/v1/lists/${encodeURIComponent(x.list)}/rollback`, { version: x.version }),
      (res) => `${x.list} rolled back to version ${x.version}: ${res.summary} — rules version ${res.version} in force`, run);
  }
  await run();
};

screens.report = async () => {
  const out = h("div", { id: "report-result" });
  const f = h("form", { class: "inline noprint" },
    h("div", { class: "field" }, h("label", { for: "r-since" }, "Period since"), h("input", { id: "r-since", value: "24h", size: 10 })),
    h("button", { type: "submit", class: "primary" }, "Show report"),
    h("button", { type: "button", onclick: () => window.print() }, "Print"));
  page("Daily report", f, out);
  const run = async () => {
    out.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    let r;
    try { r = await api("GET", "/api/v1/report?format=json&since=" + encodeURIComponent($("r-since").value.trim() || "24h")); }
    catch (err) { out.replaceChildren(errorBox(err)); return; }
    const counts = (title, head, xs) => table(title, [head, "Blocked"], xs.length ? xs.map((x) => h("tr", {}, h("td", { class: head === "Caller" ? "mono" : null }, x.key), h("td", { class: "num" }, x.calls))) :
      [h("tr", {}, h("td", { colspan: 2, class: "muted" }, "none"))]);
    out.replaceChildren(
      h("p", {}, `From ${fmtTime(r.since)} to ${fmtTime(r.until)}`),
      h("div", { class: "cards" },
        h("div", { class: "card" }, h("div", { class: "muted" }, "Calls"), h("div", { class: "big" }, r.total)),
        h("div", { class: "card" }, h("div", { class: "muted" }, "Blocked"), h("div", { class: "big" }, r.blocked)),
        h("div", { class: "card" }, h("div", { class: "muted" }, "Failed open"), h("div", { class: "big" }, r.fail_open)),
        h("div", { class: "card" }, h("div", { class: "muted" }, "Failed closed"), h("div", { class: "big" }, r.fail_closed))),
      h("div", { class: "grid2" }, counts("Blocked by trunk", "Trunk", r.blocked_by_trunk), counts("Blocked by rule", "Rule", r.blocked_by_rule),
        counts("Blocked by list", "List", r.blocked_by_list), counts("Blocked by country", "Country", r.blocked_by_country)),
      counts("Top blocked callers", "Caller", r.top_blocked_callers),
      table("Rule changes in the period", ["Time", "List", "Version", "Author", "Changes"], r.rule_changes.length ? r.rule_changes.map((c) => h("tr", {},
        h("td", {}, fmtTime(c.time)), h("td", {}, c.list), h("td", { class: "num" }, c.version), h("td", {}, c.author), h("td", {}, c.summary))) :
        [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No rule changes."))]));
  };
  f.onsubmit = (e) => { e.preventDefault(); run(); };
  await run();
};

// ---------- temporary blocks (velocity rules, learning from challenges) ----------
/** What put an entry in force, from its key (`trunk|rule|subject`, `learned-block|…`, `learned-trust|…`). */
function blockKind(b) {
  if (b.key.startsWith("learned-block|")) return ["failed challenges", "block"];
  if (b.key.startsWith("learned-trust|")) return ["verified human", "allow"];
  return ["velocity rule", "block"];
}
screens.blocks = async () => {
  const body = h("div", { id: "blocks" }, h("p", { class: "muted" }, "Loading…"));
  page("Temporary blocks",
    h("p", { class: "muted" }, "Put in force by velocity rules and by learning from challenges; each expires by itself. Lifting one lets the caller's next call be decided and counted afresh."),
    body);
  let blocks;
  try { blocks = await api("GET", "/api/v1/velocity"); }
  catch (e) { body.replaceChildren(errorBox(e)); return; }
  const lift = async (b) => {
    const what = b.subject === "*" ? `every caller on trunk ${b.trunk}` : b.subject;
    if (!(await confirmBox(`Lift the block on ${what} (${b.rule}) now? It would have expired at ${fmtTime(b.until)}.`, "Lift block"))) return;
    await change(() => api("DELETE", "/api/v1/velocity/" + encodeURIComponent(b.key)),
      () => `Block on ${what} lifted`, screens.blocks);
  };
  const rows = blocks.map((b) => {
    const [kind, cls] = blockKind(b);
    return h("tr", { "data-key": b.key },
      h("td", { class: "mono" }, b.subject === "*" ? "(whole trunk)" : b.subject),
      h("td", {}, badge(kind, cls)),
      h("td", {}, b.rule), h("td", {}, b.trunk === "*" ? "(all)" : b.trunk),
      h("td", {}, fmtTime(b.created)), h("td", {}, fmtTime(b.until)),
      h("td", { class: "noprint" }, h("button", { type: "button", class: "danger small lift", onclick: () => lift(b), "aria-label": `${kind === "verified human" ? "Forget" : "Lift the block on"} ${b.subject}` }, kind === "verified human" ? "Forget" : "Lift")));
  });
  body.replaceChildren(table(`${blocks.length} in force`, ["Caller or range", "Kind", "Rule or list", "Trunk", "Since", "Until", ""],
    rows.length ? rows : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No temporary blocks in force."))]));
};

// ---------- navigation ----------
async function route() {
  const name = (location.hash || "#overview").slice(1).split("?")[0];
  const screen = screens[name] ? name : "overview";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.screen === screen) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = `${document.querySelector(`#nav a[data-screen=${screen}]`).textContent} — callguard`;
  try { await screens[screen](); }
  catch (err) { $("main").append(errorBox(err)); }
  $("main").focus();
}
window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  showAuth();
  api("GET", "/api/v1/status").then((s) => { $("build").textContent = "v" + s.build; }, (e) => { $("build").textContent = "(status: " + e.message + ")"; });
  $("auth-button").addEventListener("click", async () => { if (token.get()) { token.clear(); flash("Token forgotten: this tab is read-only"); } else if (await askToken()) flash("Token kept for this tab"); });
  route();
});
