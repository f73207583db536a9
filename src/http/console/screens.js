// callguard console, the other screens: overview, pattern tester, call log
// (with the block dialog), import / export, history, daily report and
// temporary blocks. Helpers and the router are in console.js.
"use strict";

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
      h("dt", {}, "Decided by"), h("dd", { id: "t-decided-by" }, decidedBy(r)),
      r.pattern ? [h("dt", {}, "Pattern"), h("dd", { class: "mono" }, `${r.pattern} (${r.match_type})`)] : null,
      r.matched_on ? [h("dt", {}, "Matched on"), h("dd", {}, r.matched_on)] : null,
      h("dt", {}, "Exclusive mode"), h("dd", {}, r.exclusive_active ? "in force at that time" : "not in force at that time"),
      caps.length ? [h("dt", {}, "Captures"), h("dd", { class: "mono" }, caps.map(([k, v]) => `${k}=${v}`).join(" "))] : null,
      h("dt", {}, "At"), h("dd", {}, fmtTime(r.at)),
      h("dt", {}, "Time taken"), h("dd", {}, `${(r.eval_ns / 1000).toFixed(1)} µs`),
      h("dt", {}, "Rules version"), h("dd", {}, r.rules_version)),
    r.skipped && r.skipped.length ? table("Rules that matched but were skipped", ["Rule", "List", "Why not"],
      r.skipped.map((s) => h("tr", {}, h("td", {}, s.rule), h("td", {}, s.list), h("td", {}, s.why || s.reason)))) : h("p", { class: "muted" }, "No rule was skipped for a reason that matters."));
}
/** What decided the call: the server's decided_by (text or {list, rule}), else its rule and list. */
function decidedBy(r) {
  const d = r.decided_by;
  if (typeof d === "string" && d) return d;
  if (d && typeof d === "object") return d.rule ? `rule ${d.rule} of the ${d.list}` : (d.text || d.list || JSON.stringify(d));
  return r.rule ? `rule ${r.rule} of the ${r.list}` : r.list;
}

screens.calls = async (params) => {
  params = params || new URLSearchParams();
  const out = h("div", { id: "calls-result" });
  const field = (id, name, label, attrs) => h("div", { class: "field" }, h("label", { for: id }, label),
    h("input", Object.assign({}, attrs || {}, { id, name, value: params.get(name) || (attrs && attrs.value) || "" })));
  const f = h("form", { class: "inline noprint", id: "calls-form" },
    field("c-since", "since", "Since", { value: "24h", size: 12, "aria-describedby": "c-since-help" }),
    h("div", { class: "field" }, h("label", { for: "c-verdict" }, "Verdict"), h("select", { id: "c-verdict", name: "verdict" },
      h("option", { value: "" }, "any"), h("option", { value: "block" }, "blocked"), h("option", { value: "allow" }, "allowed"), h("option", { value: "unscreened" }, "not screened"))),
    field("c-trunk", "trunk", "Trunk", { size: 10 }),
    field("c-list", "list", "List", { size: 12 }),
    field("c-rule", "rule", "Rule", { size: 12 }),
    field("c-caller", "caller", "Caller", { size: 14 }),
    field("c-limit", "limit", "Rows", { value: "100", size: 5, inputmode: "numeric" }),
    h("button", { type: "submit", class: "primary" }, "Show calls"));
  if (params.get("verdict")) f.verdict.value = params.get("verdict");
  page("Call log", h("p", { class: "muted", id: "c-since-help" }, "Since: 1h, 24h, 7d, a date (2026-11-01) or a time (RFC 3339). Newest first. The rule of a call links to it in the Trunks screen."), f, out);
  const KEYS = ["since", "verdict", "trunk", "list", "rule", "caller", "limit"];
  const run = async (push) => {
    const q = new URLSearchParams();
    for (const k of KEYS) if (f[k].value.trim()) q.set(k, f[k].value.trim());
    if (push) setHash("calls", q, false);
    out.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    let calls;
    try { calls = await api("GET", "/api/v1/calls?" + q); } catch (err) { out.replaceChildren(errorBox(err)); return; }
    // The list filter is applied here too, so that a callguard that does not know it still shows only that list.
    if (q.get("list")) calls = calls.filter((c) => consoleList(c) === q.get("list"));
    const ruleLink = (c) => {
      const list = consoleList(c);
      if (!c.rule) return h("div", { class: "muted" }, list);
      return [h("a", { href: `#trunks?list=${encodeURIComponent(list)}&q=${encodeURIComponent(c.rule)}`, class: "rule-link", "aria-label": `Rule ${c.rule} of ${list}` }, c.rule), h("div", { class: "muted" }, list)];
    };
    const rows = calls.map((c) => h("tr", { "data-call": c.unique_id },
      h("td", {}, fmtTime(c.time)), h("td", {}, c.trunk), h("td", { class: "mono" }, c.anonymous ? "anonymous" : c.caller, c.caller_name ? h("div", { class: "muted" }, c.caller_name) : null),
      h("td", {}, verdictBadge(c.verdict), c.fail_open ? [" ", badge("failed open", "warn")] : null),
      h("td", {}, ruleLink(c)), h("td", {}, c.action),
      h("td", {}, c.reason), h("td", {}, c.end_state || ""),
      h("td", { class: "actions" }, c.anonymous ? h("span", { class: "muted" }, "hidden number") :
        h("button", { type: "button", class: "small", onclick: () => blockCaller(c), "aria-label": `Block caller ${c.caller_e164 || c.caller}` }, "Block caller"))));
    out.replaceChildren(h("h2", { id: "h-calls" }, `${calls.length} call(s)`), table({ labelledby: "h-calls" }, ["Time", "Trunk", "Caller", "Verdict", "Rule / list", "Action", "Reason", "Ended", ""],
      rows.length ? rows : [h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No calls match."))]));
  };
  f.onsubmit = (e) => { e.preventDefault(); run(true); };
  await run(false);
};
/** The console's name of the list that decided a call (`spam`, `support.blacklist`, `system_blacklist`). */
function consoleList(c) {
  if (c.list_name && c.list_name !== c.list) return c.list_name;
  return c.list === "blacklist" || c.list === "whitelist" ? `${c.trunk}.${c.list}` : c.list;
}
/**
 * Block a caller: which list and which action; the server's `check` says
 * first what a call from that number would get after the change. A refusal
 * (a protected number) or a whitelist rule that still lets the caller
 * through is shown, with the offer to disable that rule; otherwise it saves.
 */
async function blockCaller(c) {
  let t;
  const opener = document.activeElement;
  try { t = await loadTrunks(); } catch (err) { return flash(err.message, { error: true }); }
  const lists = editableLists(t).filter((l) => l.kind !== "whitelist");
  const d = $("block-dialog");
  const number = c.caller_e164 || c.caller;
  $("block-text").textContent = `Caller ${number} (call ${c.unique_id}, trunk ${c.trunk}) becomes an exact rule of the list you choose.`;
  const preferred = lists.find((l) => l.trunk === c.trunk) || lists[0];
  listOptions($("block-list"), lists, preferred && preferred.name);
  const actions = t.actions || [];
  $("block-action").replaceChildren(h("option", { value: "" }, "(the list's default)"), ...actions.map((a) => h("option", { value: a }, a)));
  $("block-name").value = "";
  $("block-error").textContent = "";
  $("block-check").replaceChildren();
  const close = () => { d.close(); if (opener && opener.isConnected) opener.focus(); };
  $("block-cancel").onclick = close;
  const body = (check) => {
    const b = { list: $("block-list").value };
    if ($("block-action").value) b.action = $("block-action").value;
    if ($("block-name").value.trim()) b.name = $("block-name").value.trim();
    if (check) b.check = true;
    return b;
  };
  const url = `/api/v1/calls/${encodeURIComponent(c.unique_id)}/block`;
  const saved = (res) => {
    close();
    state.trunks = null;
    flash((res.message || `${number} added to ${res.list || body(false).list}`) + (res.version ? ` — rules version ${res.version} in force` : ""),
      { undo: res.added === false ? null : undoOf(res.list || body(false).list, res) });
    refreshCounts();
  };
  $("block-form").onsubmit = async (e) => {
    e.preventDefault();
    $("block-error").textContent = "";
    $("block-check").replaceChildren();
    $("block-save").disabled = true;
    try {
      let chk;
      try { chk = await api("POST", url, body(true)); }
      catch (err) {
        // A callguard without the check refuses the field: save without it (the result is then reported as is).
        if (err.status === 400 && /check/.test(err.message)) return saved(await api("POST", url, body(false)));
        throw err;
      }
      // A server without the check wrote the change already: report it as done.
      if (chk && chk.verdict === undefined && (chk.version || chk.added !== undefined)) return saved(chk);
      const still = chk.still_allowed_by;
      if (still) {
        const off = h("button", { type: "button", class: "danger", id: "block-disable-wl", onclick: async () => {
          off.disabled = true;
          try {
            const r = await api("POST", `/api/v1/lists/${encodeURIComponent(still.list)}/bulk`, { op: "disable", rules: [still.rule] });
            $("block-check").replaceChildren(h("p", { role: "status" }, `Whitelist rule ${still.rule} disabled (rules version ${r.version || "?"}). Block the caller now?`));
            $("block-save").focus();
          } catch (err) { $("block-error").textContent = [err.message].concat(err.details || []).join(" — "); off.disabled = false; }
        } }, `Disable whitelist rule ${still.rule}`);
        // Only a list file can be changed here; a rule written in callguard.yaml is changed there.
        const editable = editableLists(t).some((l) => l.name === still.list);
        $("block-check").replaceChildren(h("div", { class: "api-error", role: "alert" },
          h("p", {}, `The whitelist rule ${still.rule} (${still.list}) still lets this caller through: adding the block would change nothing.`),
          editable ? off : h("p", {}, `That rule is written in callguard.yaml: disable it there, then block the caller.`)));
        (editable ? off : $("block-cancel")).focus();
        return;
      }
      if (chk.verdict && chk.verdict !== "block") {
        $("block-check").replaceChildren(h("div", { class: "api-error", role: "alert" },
          h("p", {}, `After the change a call from ${number} would still be ${chk.verdict === "allow" ? "allowed" : chk.verdict}: ${chk.reason || ""}`)));
        return;
      }
      saved(await api("POST", url, body(false)));
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
  } catch (err) { flash(`Export of ${list} failed: ${err.message}`, { error: true }); }
}

screens.import = async () => {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  page("Import / export", body);
  // The lists and their counts come from /api/v1/lists: never every rule of /api/v1/trunks.
  let all;
  try { all = (await api("GET", "/api/v1/lists")).lists; } catch (e) { body.replaceChildren(errorBox(e)); return; }
  const lists = all.filter((l) => l.editable).sort((a, b) => (a.kind === "whitelist") - (b.kind === "whitelist"));
  const sel = h("select", { id: "i-list", required: true });
  // Nothing is preselected: importing into a system-wide blacklist by accident is too easy.
  listOptions(sel, lists, null, "(choose a list)");
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
    if (!sel.value) throw new ApiError(0, { error: "choose the list to import into" });
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
        refreshCounts();
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
  for (const l of all) {
    exportRows.push(h("tr", { "data-list": l.name }, h("th", { scope: "row" }, l.name), h("td", {}, String(l.kind).replace("_", " ")),
      h("td", { class: "num", "data-count-for": l.name }, fmtNum(countOf(l))),
      h("td", { class: "actions" }, FORMATS.map((x) => [h("button", { type: "button", class: "small", onclick: () => download(l.name, x), "aria-label": `Export ${l.name} as ${x.toUpperCase()}` }, x.toUpperCase()), " "]))));
  }
  body.replaceChildren(form, preview, h("h2", { id: "h-export" }, "Export"), table({ labelledby: "h-export" }, ["List", "Kind", "Rules", "Download"], exportRows));
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
    out.replaceChildren(h("h2", { id: "h-versions" }, sel.value ? `Versions of ${sel.value}` : "Versions"),
      table({ labelledby: "h-versions" }, ["Version", "Time", "List", "Author", "Changes", ""], v.versions.length ? v.versions.map((x) => h("tr", { "data-version": x.version, "data-list": x.list },
      h("td", { class: "num" }, x.version), h("td", {}, fmtTime(x.time)), h("td", {}, x.list), h("td", {}, x.author), h("td", {}, x.summary),
      h("td", { class: "actions" }, latest[x.list] === x.version ? h("span", { class: "muted" }, "current") :
        h("button", { type: "button", class: "small", onclick: () => rollback(x), "aria-label": `Roll back ${x.list} to version ${x.version}` }, "Roll back to this")))) :
      [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No versions recorded yet."))]));
  };
  f.onsubmit = (e) => { e.preventDefault(); run(); };
  async function rollback(x) {
    if (!(await confirmBox(`Roll list ${x.list} back to version ${x.version} (${fmtTime(x.time)}, by ${x.author})? Its rules are replaced by that version's at once.`, "Roll back"))) return;
    await change(() => api("POST", `/api/v1/lists/${encodeURIComponent(x.list)}/rollback`, { version: x.version }),
      (res) => `${x.list} rolled back to version ${x.version}: ${res.summary} — rules version ${res.version} in force`, run,
      // The new version (the changed row) is the newest of its list: focus it.
      () => { const tr = $("history-result").querySelector(`tr[data-list="${CSS.escape(x.list)}"]`); return tr && (tr.querySelector("button") || tr); });
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

/**
 * Runs a change; on success shows the message, redraws and focuses what
 * `focus()` returns (the changed row, or the next one); on failure shows the
 * error at the top of the screen and keeps the focus where it was.
 */
async function change(run, message, redraw, focus) {
  const before = document.activeElement;
  try {
    const res = await run();
    flash(message(res));
    if (redraw) await redraw();
    const el = focus ? focus() : null;
    (el || (before && before.isConnected ? before : $("page-title"))).focus({ preventScroll: false });
    refreshCounts();
  } catch (err) {
    const main = $("main");
    main.querySelectorAll(".change-error").forEach((x) => x.remove());
    const box = errorBox(err); box.classList.add("change-error");
    main.querySelector("h1").after(box);
    if (before && before.isConnected) before.focus();
  }
}

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
    const i = blocks.indexOf(b);
    await change(() => api("DELETE", "/api/v1/velocity/" + encodeURIComponent(b.key)),
      () => `Block on ${what} lifted`, screens.blocks,
      // Focus the next entry (the one that took the lifted one's place), else the last, else the heading.
      () => { const left = document.querySelectorAll("#blocks tr[data-key] button"); return left[Math.min(i, left.length - 1)] || $("page-title"); });
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

