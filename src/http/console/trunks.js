// callguard console, the Trunks screen: each list is shown a page at a time
// (50 rows, the total, search as you type, sort by column) from
// GET /api/v1/lists/{name}/entries, never every row; rows can be selected
// and disabled, enabled or deleted as one change, with an Undo offer. The
// state of the list last used is kept in the URL hash so a link can be shared.
"use strict";

function scheduleText(s) {
  if (!s) return "";
  if (s.schedule) return `${s.while} ${s.schedule}`;
  return "";
}
/** The trunk's real mode: the server's words (mode_text) when it has them. */
function modeText(t) {
  if (t.mode_text) {
    const kind = t.mode === "additive" ? "info" : (t.exclusive_now === false ? "allow" : "warn");
    return h("span", { class: "mode" }, badge(t.mode_text, kind));
  }
  if (t.mode === "additive") return badge("additive", "info");
  if (t.mode === "exclusive") return badge("exclusive: whitelist only", "warn");
  return h("span", {}, badge("exclusive " + scheduleText(t.exclusive_schedule), "warn"), " ",
    t.exclusive_now ? badge("in force now", "block") : badge("not in force now", "allow"));
}
/** Lists up to this many rows show no search box (a glance is enough). */
const SEARCH_FROM = 10;
const isAttestation = (r) => r.match === "attestation" || r.match_type === "attestation";
/** The action a call would really get, and where it comes from. */
function actionText(r, l) {
  if (r.effective_action) {
    const s = r.action_source;
    const src = s && s !== "rule" ? ` (${/default$/.test(s) ? s : s + " default"})` : "";
    return r.effective_action + src;
  }
  if (r.action) return r.action;
  return l.default_action ? l.default_action + " (list default)" : (l.kind === "whitelist" ? "allow" : "(trunk default)");
}

// Sortable columns: header text → the server's sort key.
const COLUMNS = [
  ["Name", "name"], ["Match", null], ["Pattern", "pattern"], ["Action", "action"], ["Schedule", null],
  ["Enabled", "enabled"], ["Notes", null], ["Added", "added"], ["Changed", "changed"],
  ["Hits (30 d)", "hits"], ["Last hit", "last_hit"],
];

/** A list shown a page at a time. `ps` carries q, page, sort, order (from the hash for the active list). */
class ListPanel {
  constructor(l, ps) {
    this.l = l;
    this.q = ps.q || "";
    this.page = Math.max(1, parseInt(ps.page, 10) || 1);
    this.sort = ps.sort || "position";
    this.order = ps.order === "desc" ? "desc" : "asc";
    this.selected = new Set();
    this.allMatching = false;
    this.rows = [];
    this.total = 0;
    this.count = countOf(l);
    this.id = idOf(l.name);
    this.server = !!l.entries_url || Array.isArray(l.entries);
    this.seq = 0;
    this.el = this.build();
  }
  get editable() { return this.l.editable && !state.readOnly; }
  build() {
    const l = this.l;
    this.search = h("input", { type: "search", id: "q-" + this.id, class: "list-search", value: this.q, autocomplete: "off",
      placeholder: "name, pattern, notes or a phone number", "aria-describedby": "sum-" + this.id });
    this.search.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { this.q = this.search.value.trim(); this.page = 1; this.clearSelection(); this.load({ replace: true }); }, 250);
    });
    this.summary = h("p", { class: "list-summary", id: "sum-" + this.id, role: "status" });
    this.pager = h("nav", { class: "pager", "aria-label": `Pages of ${l.name}` });
    this.bulkBar = h("div", { class: "bulk", role: "group", "aria-label": `Change selected rules of ${l.name}` });
    this.body = h("div", { class: "list-body" });
    const kind = badge(l.kind.replace("_", " "), l.kind === "whitelist" ? "allow" : (l.kind === "protected" ? "info" : "block"));
    return h("section", { class: "list", "data-list": l.name, "aria-labelledby": "h-list-" + this.id },
      h("div", { class: "list-head" },
        h("h3", { id: "h-list-" + this.id }, `${l.name} `, kind),
        h("span", { class: "muted" }, h("span", { "data-count-for": l.name, class: "count" }, fmtNum(this.count)), this.count === 1 ? " rule" : " rules",
          l.path ? " · " + l.path : " · in callguard.yaml (read-only here)"),
        this.editable ? h("button", { type: "button", class: "primary small add-rule", onclick: () => editRule(l, null, this), "aria-label": `Add rule to ${l.name}` }, "Add rule") : null),
      h("div", { class: "list-tools", hidden: this.count <= SEARCH_FROM && !this.q }, 
        h("div", { class: "field" }, h("label", { for: "q-" + this.id }, `Search ${l.name}`), this.search),
        this.summary),
      this.bulkBar, this.body, this.pager);
  }
  params() {
    const p = new URLSearchParams();
    p.set("list", this.l.name);
    if (this.q) p.set("q", this.q);
    if (this.page > 1) p.set("page", this.page);
    if (this.sort !== "position") p.set("sort", this.sort);
    if (this.order !== "asc") p.set("order", this.order);
    return p;
  }
  /** Fetches the current page (from the server when it pages, else from the rows /trunks gave). */
  async fetchPage() {
    const offset = (this.page - 1) * PAGE;
    if (this.server) {
      const base = this.l.entries_url || `/api/v1/lists/${encodeURIComponent(this.l.name)}/entries`;
      const q = new URLSearchParams({ q: this.q, sort: this.sort, order: this.order, offset, limit: PAGE });
      try {
        const r = await api("GET", base + (base.includes("?") ? "&" : "?") + q);
        return { rows: r.entries || [], total: r.total ?? (r.entries || []).length, count: r.count ?? this.count };
      } catch (err) {
        if (!(err.status === 404 || err.status === 405) || !Array.isArray(this.l.rules)) throw err;
        this.server = false;
      }
    }
    // An older server: every row came with /api/v1/trunks; search, sort and page here
    // (re-reading /api/v1/trunks after a change).
    if (this.stale) {
      const t = await loadTrunks(true);
      const fresh = [t.protected].concat(t.system, ...t.trunks.map((x) => x.lists)).find((x) => x.name === this.l.name);
      if (fresh) this.l.rules = fresh.rules;
      this.stale = false;
    }
    const all = (this.l.rules || []).map((r, i) => Object.assign({ position: i }, r));
    const needle = this.q.toLowerCase();
    const digits = this.q.replace(/[^0-9]/g, "");
    let rows = needle ? all.filter((r) => [r.name, r.pattern, r.notes].some((x) => String(x || "").toLowerCase().includes(needle)) ||
      (digits.length >= 3 && String(r.pattern || "").replace(/[^0-9]/g, "").includes(digits))) : all;
    if (this.sort !== "position") {
      const k = this.sort;
      rows = rows.slice().sort((a, b) => (a[k] ?? "") < (b[k] ?? "") ? -1 : (a[k] ?? "") > (b[k] ?? "") ? 1 : 0);
    }
    if (this.order === "desc") rows = rows.slice().reverse();
    return { rows: rows.slice(offset, offset + PAGE), total: rows.length, count: all.length };
  }
  /** Loads and draws the page. `opts.push`/`replace` writes the state into the hash; `opts.focus` is a rule name to focus. */
  async load(opts) {
    opts = opts || {};
    if (opts.changed) this.stale = true;
    const seq = ++this.seq;
    this.el.setAttribute("aria-busy", "true");
    let got;
    try {
      // /api/v1/trunks carries the first page (entries, or rules beside entries_url): no second request for it.
      const first = Array.isArray(this.l.entries) ? this.l.entries : (this.l.entries_url && Array.isArray(this.l.rules) ? this.l.rules.slice(0, PAGE) : null);
      got = opts.initial && first && !this.q && this.page === 1 && this.sort === "position"
        ? { rows: first, total: this.count, count: this.count } : await this.fetchPage();
    } catch (err) {
      if (seq === this.seq) { this.body.replaceChildren(errorBox(err)); this.el.removeAttribute("aria-busy"); }
      return;
    }
    if (seq !== this.seq) return; // a newer search is on its way
    this.el.removeAttribute("aria-busy");
    const pages = Math.max(1, Math.ceil(got.total / PAGE));
    if (this.page > pages && got.total > 0) { this.page = pages; return this.load(opts); }
    this.rows = got.rows; this.total = got.total; this.count = got.count;
    for (const el of this.el.querySelectorAll(`[data-count-for]`)) el.textContent = fmtNum(this.count);
    if (this.count > SEARCH_FROM) this.el.querySelector(".list-tools").hidden = false;
    if (opts.push || opts.replace) setHash("trunks", this.params(), !!opts.replace);
    this.draw();
    if (opts.focus !== undefined) this.focusRow(opts.focus);
  }
  draw() {
    const l = this.l;
    const from = this.total ? (this.page - 1) * PAGE + 1 : 0;
    const to = Math.min(this.total, this.page * PAGE);
    this.summary.textContent = this.q
      ? `${fmtNum(this.total)} of ${fmtNum(this.count)} rules match “${this.q}”` + (this.total ? `; showing ${fmtNum(from)}–${fmtNum(to)}` : "")
      : (this.total ? `Showing ${fmtNum(from)}–${fmtNum(to)} of ${fmtNum(this.total)} rules` : "No rules.");
    const ed = this.editable;
    const pageBox = ed ? h("input", { type: "checkbox", class: "select-page", "aria-label": `Select the rules on this page of ${l.name}`,
      checked: this.rows.length > 0 && this.rows.every((r) => this.selected.has(r.name)) || this.allMatching,
      onchange: (e) => { for (const r of this.rows) { if (e.target.checked) this.selected.add(r.name); else this.selected.delete(r.name); } this.allMatching = false; this.draw(); this.el.querySelector(".select-page").focus(); } }) : null;
    const headers = [];
    if (ed) headers.push(h("th", { scope: "col", class: "sel", "data-label": "Select" }, pageBox));
    for (const [text, key] of COLUMNS) {
      const cls = /^Hits/.test(text) ? "num" : null;
      if (!key) { headers.push(h("th", { scope: "col", class: cls, "data-label": text }, text)); continue; }
      const on = this.sort === key;
      headers.push(h("th", { scope: "col", class: cls, "data-label": text, "aria-sort": on ? (this.order === "asc" ? "ascending" : "descending") : "none" },
        h("button", { type: "button", class: "sort", "data-sort": key, onclick: () => this.sortBy(key) }, text, h("span", { "aria-hidden": "true" }, on ? (this.order === "asc" ? " ▲" : " ▼") : ""))));
    }
    if (ed) headers.push(h("th", { scope: "col", "data-label": "" }, h("span", { class: "visually-hidden" }, "Actions")));
    const rows = this.rows.map((r) => this.row(r));
    const span = headers.length;
    this.body.replaceChildren(table({ labelledby: "h-list-" + this.id }, headers,
      rows.length ? rows : [h("tr", {}, h("td", { colspan: span, class: "muted" }, this.q ? "No rule matches the search." : "No rules."))], { class: "rules" }));
    this.drawPager();
    this.drawBulk();
  }
  row(r) {
    const l = this.l;
    const att = isAttestation(r);
    const cells = [];
    if (this.editable) {
      cells.push(h("td", { class: "sel" }, h("input", { type: "checkbox", class: "select-row", "aria-label": `Select ${r.name}`,
        checked: this.allMatching || this.selected.has(r.name),
        onchange: (e) => { if (this.allMatching) { this.allMatching = false; for (const x of this.rows) this.selected.add(x.name); } if (e.target.checked) this.selected.add(r.name); else this.selected.delete(r.name); this.drawBulk(); } })));
    }
    cells.push(
      h("th", { scope: "row" }, r.name),
      h("td", {}, att ? "attestation" : (r.match_type || r.match || "auto")),
      h("td", { class: att ? null : "mono" }, att ? (r.condition || r.pattern) : r.pattern),
      h("td", { class: "action" }, actionText(r, l)),
      h("td", {}, scheduleText(r.schedule)), h("td", {}, r.enabled ? "yes" : "no"), h("td", {}, r.notes),
      h("td", { title: fmtTime(r.added) }, fmtDate(r.added)), h("td", { title: fmtTime(r.changed) }, fmtDate(r.changed)),
      // The hit count links to the calls the rule decided (the Calls screen, filtered).
      h("td", { class: "num hits" }, h("a", { href: `#calls?list=${encodeURIComponent(l.name)}&rule=${encodeURIComponent(r.name)}`, class: "calls-link",
        "aria-label": `${r.hits ?? 0} calls decided by ${r.name} in 30 days` }, r.hits ?? "0")),
      h("td", { title: fmtTime(r.last_hit) }, r.last_hit ? fmtDate(r.last_hit) : (r.last_hit === null ? "never" : "")));
    if (this.editable) {
      cells.push(h("td", { class: "actions" },
        h("button", { type: "button", class: "small", onclick: () => editRule(l, r, this), "aria-label": `Edit ${r.name}` }, "Edit"), " ",
        h("button", { type: "button", class: "small toggle", onclick: () => toggleRule(this, r), "aria-label": `${r.enabled ? "Disable" : "Enable"} ${r.name}` }, r.enabled ? "Disable" : "Enable"), " ",
        h("button", { type: "button", class: "small", onclick: () => deleteRule(this, r), "aria-label": `Delete ${r.name}` }, "Delete")));
    }
    return h("tr", { class: r.enabled ? null : "disabled", "data-rule": r.name, tabindex: "-1" }, cells);
  }
  drawPager() {
    const pages = Math.max(1, Math.ceil(this.total / PAGE));
    if (pages <= 1) { this.pager.replaceChildren(); return; }
    const go = (p) => h("button", { type: "button", class: "small", disabled: p < 1 || p > pages || p === this.page,
      onclick: () => { this.page = p; this.load({ push: true }).then(() => this.pager.querySelector(".page-of").focus()); } });
    this.pager.replaceChildren(
      Object.assign(go(1), { textContent: "First" }), Object.assign(go(this.page - 1), { textContent: "Previous" }),
      h("span", { class: "page-of", tabindex: "-1" }, `Page ${fmtNum(this.page)} of ${fmtNum(pages)}`),
      Object.assign(go(this.page + 1), { textContent: "Next" }), Object.assign(go(pages), { textContent: "Last" }));
    this.pager.querySelectorAll("button")[2].classList.add("next");
  }
  drawBulk() {
    const n = this.allMatching ? this.total : this.selected.size;
    // The bar shows once a row is selected: nothing to offer before.
    if (!this.editable || n === 0) { this.bulkBar.replaceChildren(); return; }
    const all = this.total > this.rows.length && !this.allMatching && this.rows.length && this.rows.every((r) => this.selected.has(r.name))
      ? h("button", { type: "button", class: "small select-all", onclick: () => { this.allMatching = true; this.draw(); this.bulkBar.querySelector(".bulk-count").focus(); } },
        `Select all ${fmtNum(this.total)} ${this.q ? "matching" : "rules"}`) : null;
    const act = (op, label, cls) => h("button", { type: "button", class: "small " + (cls || ""), "data-op": op, disabled: n === 0, onclick: () => this.bulk(op) }, label);
    this.bulkBar.replaceChildren(...[
      h("span", { class: "bulk-count", tabindex: "-1" }, n ? `${fmtNum(n)} selected` : "None selected"),
      all, act("disable", "Disable selected"), act("enable", "Enable selected"), act("delete", "Delete selected", "danger"),
      h("button", { type: "button", class: "small", onclick: () => { this.clearSelection(); this.draw(); this.el.querySelector(".select-page").focus(); } }, "Clear selection")].filter(Boolean));
  }
  clearSelection() { this.selected.clear(); this.allMatching = false; }
  sortBy(key) {
    if (this.sort === key) this.order = this.order === "asc" ? "desc" : "asc"; else { this.sort = key; this.order = "asc"; }
    this.page = 1;
    this.load({ push: true }).then(() => { const b = this.el.querySelector(`button.sort[data-sort="${key}"]`); if (b) b.focus(); });
  }
  /** Disable, enable or delete the selection as ONE change, then offer to undo it. */
  async bulk(op) {
    const l = this.l;
    const n = this.allMatching ? this.total : this.selected.size;
    const body = this.allMatching ? { op, q: this.q } : { op, rules: [...this.selected] };
    const what = this.allMatching ? (this.q ? `all ${fmtNum(n)} rules matching “${this.q}”` : `all ${fmtNum(n)} rules`) : `${fmtNum(n)} selected rule${n === 1 ? "" : "s"}`;
    if (!(await confirmBox(`${op[0].toUpperCase() + op.slice(1)} ${what} of ${l.name}? This is one change: one history entry, undone in one step.`, op[0].toUpperCase() + op.slice(1)))) return;
    const first = this.rows.find((r) => this.allMatching || this.selected.has(r.name));
    const next = op === "delete" ? this.rows.find((r) => !(this.allMatching || this.selected.has(r.name)) && this.rows.indexOf(r) > this.rows.indexOf(first)) : first;
    try {
      const res = await api("POST", `/api/v1/lists/${encodeURIComponent(l.name)}/bulk`, body);
      const done = { disable: "disabled", enable: "enabled", delete: "deleted" }[op];
      flash(`${fmtNum(res.affected ?? n)} rules of ${l.name} ${done} in one change` + (res.version ? ` — rules version ${res.version} in force` : ""),
        { undo: undoOf(l.name, res, () => this.load({ focus: first && first.name, changed: true })) });
      this.clearSelection();
      await this.load({ focus: next ? next.name : null, changed: true });
      refreshCounts();
    } catch (err) {
      if (err.status === 404 || err.status === 405) err = new ApiError(err.status, { error: "this callguard has no bulk changes (POST /api/v1/lists/{name}/bulk): change the rules one by one" });
      this.showError(err);
    }
  }
  showError(err) {
    this.el.querySelectorAll(".change-error").forEach((x) => x.remove());
    const box = errorBox(err); box.classList.add("change-error");
    this.el.querySelector(".list-head").after(box);
  }
  /** After a change: focus the changed row (or, gone, the next one; else the search box). */
  focusRow(name) {
    const tr = name ? this.el.querySelector(`tr[data-rule="${CSS.escape(name)}"]`) : null;
    if (tr) { (tr.querySelector("button.toggle") || tr).focus(); return; }
    const first = this.el.querySelector("tr[data-rule]");
    (first ? (first.querySelector("button.toggle") || first) : this.search).focus();
  }
}

screens.trunks = async (params) => {
  params = params || new URLSearchParams();
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  page("Trunks", h("p", { class: "muted" }, "Lists in the order a call meets them: protected numbers, the system blacklist, then per trunk its whitelists and blacklists. Lists written in callguard.yaml are read-only here; list files can be edited."), body);
  let t;
  try { t = await loadTrunks(true); } catch (e) { body.replaceChildren(errorBox(e)); return; }
  const active = params.get("list");
  const panels = [];
  const panel = (l) => {
    const ps = l.name === active ? Object.fromEntries(params) : {};
    const p = new ListPanel(l, ps);
    panels.push(p);
    return p.el;
  };
  const sections = [h("section", { class: "card", "aria-labelledby": "h-system" }, h("h2", { id: "h-system" }, "All trunks"),
    t.protected ? panel(t.protected) : null, (t.system || []).map((l) => panel(l)))];
  for (const tr of t.trunks) {
    sections.push(h("section", { class: "card trunk", "data-trunk": tr.name, "aria-labelledby": "h-trunk-" + idOf(tr.name) },
      h("div", { class: "trunk-head" }, h("h2", { id: "h-trunk-" + idOf(tr.name) }, "Trunk " + tr.name), modeText(tr),
        tr.name === t.default_trunk ? badge("default trunk", "info") : null),
      h("p", { class: "muted" }, (tr.dids.length ? "DIDs " + tr.dids.join(", ") : "No DIDs") +
        (tr.blocked_action ? "; blocked calls: " + tr.blocked_action : "") + (tr.in_force ? "" : "; not yet in force (reload pending or refused)")),
      tr.lists.map((l) => panel(l))));
  }
  body.replaceChildren(h("p", { class: "muted" }, `Rules version ${t.version}. Hits: calls decided by the rule in the last ${t.hit_days} days. Each list shows ${PAGE} rules a page.`), ...sections);
  await Promise.all(panels.map((p) => p.load({ initial: true })));
  const p = panels.find((x) => x.l.name === active);
  if (p && (params.get("q") || params.get("page") || params.get("sort"))) p.el.scrollIntoView({ block: "start" });
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
/** Add (rule null) or edit a rule of list l in the rule dialog; `panel` is redrawn after. */
function editRule(l, r, panel) {
  const d = $("rule-dialog");
  const f = $("rule-form");
  const opener = document.activeElement;
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
  $("rule-cancel").onclick = () => { d.close(); if (opener) opener.focus(); };
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
      const redraw = () => (panel ? panel.load({ focus: row.rule_name, changed: true }) : screens.trunks());
      flash(`${l.name}: ${res.summary || "saved"} — rules version ${res.version} in force`, { undo: undoOf(l.name, res, redraw) });
      if (panel && !r) { panel.q = row.rule_name; panel.search.value = panel.q; panel.page = 1; }
      await redraw();
      refreshCounts();
    } catch (err) { showFieldErrors(err); }
    finally { $("rule-save").disabled = false; }
  };
  d.showModal();
  f.rule_name.focus();
}
/** A change to one row; the row (or the next one) has the focus after it. */
async function rowChange(panel, r, run, message, focus) {
  try {
    const res = await run();
    flash(message(res), { undo: undoOf(panel.l.name, res, () => panel.load({ focus: r.name, changed: true })) });
    await panel.load({ focus, changed: true });
    refreshCounts();
  } catch (err) {
    panel.showError(err);
    panel.focusRow(r.name);
  }
}
async function toggleRule(panel, r) {
  const l = panel.l;
  const row = { rule_name: r.name, pattern: r.pattern, match_type: r.match_type, action: r.action, enabled: !r.enabled, notes: r.notes };
  await rowChange(panel, r, () => api("PUT", `/api/v1/lists/${encodeURIComponent(l.name)}/entries/${encodeURIComponent(r.name)}`, row),
    (res) => `${r.name} ${r.enabled ? "disabled" : "enabled"} — rules version ${res.version} in force`, r.name);
}
async function deleteRule(panel, r) {
  const l = panel.l;
  if (!(await confirmBox(`Delete rule ${r.name} (${r.pattern}) from ${l.name}? The history keeps the old version for a rollback.`, "Delete rule"))) { panel.focusRow(r.name); return; }
  const i = panel.rows.findIndex((x) => x.name === r.name);
  const next = panel.rows[i + 1] || panel.rows[i - 1];
  await rowChange(panel, r, () => api("DELETE", `/api/v1/lists/${encodeURIComponent(l.name)}/entries/${encodeURIComponent(r.name)}`),
    (res) => `${r.name} deleted — rules version ${res.version} in force`, next ? next.name : null);
}
