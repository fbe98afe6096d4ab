// importer web UI: the tenant's imports, and one import followed live over its SSE stream.
// No framework and no build step. The native token comes from a form or #token=..., lives in
// sessionStorage (this tab only) and is sent as a bearer header; fetch() reads the event stream
// because EventSource cannot send headers.
"use strict";

const TOKEN_KEY = "importer.token";
const TERMINAL = new Set(["completed", "failed", "canceled", "reverted"]);
const app = document.getElementById("app");

// ---- small helpers ---------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const fmt = new Intl.NumberFormat();
const num = (n) => (n === null || n === undefined ? "—" : fmt.format(n));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");

function duration(from, to) {
  if (!from) return "—";
  const ms = (to ? new Date(to) : new Date()) - new Date(from);
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function takeTokenFromFragment() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search); // the token leaves the URL
}

class Unauthorized extends Error {}

async function api(path, accept = "application/json") {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${token()}`, Accept: accept } });
  if (resp.status === 401) throw new Unauthorized();
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try { message = (await resp.json()).error.message || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return accept === "application/json" ? resp.json() : resp;
}

function badge(state) {
  return h("span", { class: `badge ${state}` }, state);
}

function bar(view, big) {
  const fill = h("span");
  fill.style.width = `${view.percentage}%`;
  return h("div", {
    class: `bar ${view.state}${big ? " big" : ""}`, role: "progressbar",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(view.percentage),
  }, fill);
}

function fail(error) {
  if (error instanceof Unauthorized) {
    sessionStorage.removeItem(TOKEN_KEY);
    signIn("That token was refused. Paste a valid native token.");
    return;
  }
  app.replaceChildren(h("div", { class: "banner" }, `Something went wrong: ${error.message}`));
}

// ---- sign in ---------------------------------------------------------------------------------

function signIn(message) {
  document.getElementById("signout").hidden = true;
  const form = document.getElementById("signin").content.firstElementChild.cloneNode(true);
  const error = form.querySelector("#signin-error");
  if (message) { error.textContent = message; error.hidden = false; }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, form.querySelector("#token").value.trim());
    route();
  });
  app.replaceChildren(form);
  form.querySelector("#token").focus();
}

// ---- the imports list ------------------------------------------------------------------------

async function listPage() {
  document.title = "Imports · importer";
  const body = h("tbody");
  const more = h("button", { class: "button", hidden: true }, "Show older imports");
  const table = h("div", { class: "card table-card" },
    h("table", {},
      h("thead", {}, h("tr", {},
        h("th", {}, "#"), h("th", {}, "Dataset"), h("th", {}, "File"), h("th", {}, "State"),
        h("th", {}, "Progress"), h("th", { class: "num" }, "Rows"), h("th", { class: "num" }, "Created"),
        h("th", { class: "num" }, "Updated"), h("th", { class: "num" }, "Failed"), h("th", {}, "Requested"))),
      body));
  app.replaceChildren(
    h("div", { class: "section-head" }, h("h1", {}, "Imports"), h("span", { class: "muted" }, "newest first")),
    table, h("div", { class: "section" }, more));
  let before = null;
  let shown = [];
  async function load(reset) {
    const page = await api(`/imports?limit=50${!reset && before ? `&before=${before}` : ""}`);
    shown = reset ? page.items : shown.concat(page.items);
    before = page.next_before;
    render();
    more.hidden = page.next_before === null;
  }
  function render() {
    body.replaceChildren(...(shown.length ? shown.map(row) : [h("tr", {}, h("td", { colspan: "10", class: "empty" },
      "No imports yet. Upload a file with POST /imports or importer submit."))]));
  }
  function row(v) {
    const open = () => { location.href = `/ui/imports/${v.id}`; };
    return h("tr", { class: "row-link", onclick: open, "data-id": String(v.id) },
      h("td", {}, h("a", { href: `/ui/imports/${v.id}` }, `#${v.id}`)),
      h("td", {}, v.dataset, v.dry_run ? [" ", h("span", { class: "chip" }, "dry run")] : null),
      h("td", { class: "muted" }, v.file ? v.file.name || "upload" : v.source_uri || "—"),
      h("td", {}, badge(v.state)),
      h("td", {}, bar(v)),
      h("td", { class: "num" }, num(v.rows.total)),
      h("td", { class: "num" }, num(v.rows.created)),
      h("td", { class: "num" }, num(v.rows.updated)),
      h("td", { class: "num" }, num(v.rows.failed)),
      h("td", { class: "muted" }, when(v.requested_at)));
  }
  more.addEventListener("click", () => load(false).catch(fail));
  await load(true);
  // Running imports move: refresh the first page while any of them is still going.
  const timer = setInterval(() => {
    if (!document.body.contains(body)) return clearInterval(timer);
    if (shown.some((v) => !TERMINAL.has(v.state))) load(true).catch(() => {});
  }, 2000);
}

// ---- one import, live ------------------------------------------------------------------------

const EVENT_WORDS = {
  import_requested: "Requested", download_attempted: "Download attempt failed", file_stored: "File stored",
  file_parsed: "File read", chunks_staged: "Chunks read", chunk_applied: "Chunk applied", threshold_exceeded: "Error threshold exceeded",
  rolled_back: "Rolled back", import_completed: "Completed", import_failed: "Failed", import_canceled: "Canceled",
  webhook_attempted: "Webhook attempt", webhook_delivered: "Webhook delivered", webhook_abandoned: "Webhook abandoned",
  webhook_redelivery_requested: "Webhook redelivery requested",
  revert_requested: "Revert requested", revert_chunk_applied: "Chunk reverted", import_reverted: "Reverted",
};
const OUTCOME_WORDS = { c: "created", u: "updated", n: "unchanged", i: "ignored", f: "failed", s: "skipped" };

function eventDetail(e) {
  switch (e.type) {
    case "import_requested": // the log leaves out what is the default
      return `${e.spec.mode || "update"} into ${e.spec.dataset}, ${e.spec.policy || "partial"} policy${e.spec.dry_run ? ", dry run" : ""}`;
    case "file_stored": return `${e.filename || "file"}: ${num(e.size)} bytes, ${e.format.toUpperCase()}`;
    case "file_parsed": return `${num(e.total_rows)} rows in ${num(e.chunks)} chunk${e.chunks === 1 ? "" : "s"}`;
    case "chunks_staged": return `${num(e.chunks)} chunk${e.chunks === 1 ? "" : "s"} read so far, the rest of the file still being read`;
    case "chunk_applied": {
      const totals = {};
      let rows = 0;
      for (const [o, n] of e.runs) { totals[o] = (totals[o] || 0) + n; rows += n; }
      const parts = Object.entries(totals).map(([o, n]) => `${num(n)} ${OUTCOME_WORDS[o]}`);
      return `chunk ${e.chunk + 1}: ${num(rows)} rows (${parts.join(", ")})`;
    }
    case "threshold_exceeded": return `${num(e.failed)} failed rows, threshold ${e.threshold}`;
    case "rolled_back": return `${num(e.rows)} rows not written`;
    case "import_failed": case "import_canceled": return e.reason;
    case "download_attempted": return e.error;
    case "webhook_attempted": return e.status ? `HTTP ${e.status}` : e.error;
    default: return "";
  }
}

function timelineItem(e) {
  const bad = ["import_failed", "threshold_exceeded", "rolled_back", "download_attempted", "webhook_abandoned"].includes(e.type);
  const good = ["import_completed", "webhook_delivered"].includes(e.type);
  return h("li", { class: bad ? "bad" : good ? "good" : null },
    h("span", { class: "what" }, EVENT_WORDS[e.type] || e.type), h("span", { class: "when" }, clock(e.at)),
    h("div", { class: "detail" }, eventDetail(e)));
}

async function download(ticket, name) {
  const resp = await api(`/imports/${ticket}/${name}`, "*/*");
  const url = URL.createObjectURL(await resp.blob());
  const a = h("a", { href: url, download: `import-${ticket}-${name}` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function importPage(ticket) {
  document.title = `Import #${ticket} · importer`;
  const live = h("span", { class: "live", id: "live" }, "connecting");
  const head = h("div");
  const progress = h("div", { class: "card section" });
  const counts = h("div", { class: "counts", id: "counts" });
  const meta = h("dl", { class: "meta" });
  const timeline = h("ul", { class: "timeline", id: "timeline" });
  const failures = h("div", { id: "failures" });
  app.replaceChildren(
    h("p", {}, h("a", { href: "/ui/" }, "← All imports")), head, progress, counts,
    h("div", { class: "grid2" },
      h("div", { class: "card" }, h("div", { class: "section-head" }, h("h2", {}, "Timeline"), live), timeline),
      h("div", { class: "card" }, h("h2", {}, "Details"), meta)),
    h("div", { class: "card section" }, failures));
  let view = null;
  let refreshing = null;

  function renderView(v) {
    view = v;
    const file = v.file ? v.file.name || "upload" : v.source_uri || "";
    head.replaceChildren(...[
      h("div", { class: "title-row" }, h("h1", {}, `Import #${v.id}`), badge(v.state),
        v.dry_run ? h("span", { class: "chip" }, "dry run: nothing is written") : null),
      h("p", { class: "subtitle" }, `${file} → ${v.dataset}`),
      v.error ? h("div", { class: "banner", id: "error" }, v.error) : null,
      v.dry_run && v.state === "completed" ? h("div", { class: "banner info" },
        "This was a dry run: the counts are what a real import of this file would do now; no record was written.") : null,
    ].filter(Boolean));
    const processed = v.rows.total ? `${num(v.rows.processed)} of ${num(v.rows.total)} rows` : "reading the file…";
    progress.replaceChildren(
      h("div", { class: "section-head" }, h("h2", {}, "Progress"), h("span", { class: "muted", id: "processed" }, processed)),
      h("div", { class: "progress-line" }, bar(v, true), h("span", { class: "pct", id: "pct" }, `${v.percentage}%`)));
    const shown = [["total", v.rows.total], ["created", v.rows.created], ["updated", v.rows.updated],
      ["unchanged", v.rows.unchanged], ["ignored", v.rows.ignored], ["failed", v.rows.failed],
      ["skipped", v.rows.skipped]];
    if (v.rows.rolled_back) shown.push(["rolled back", v.rows.rolled_back]);
    counts.replaceChildren(...shown.map(([label, n]) =>
      h("div", { class: `count ${label}`, "data-count": label }, h("div", { class: "label" }, label), h("div", { class: "value" }, num(n)))));
    meta.replaceChildren(...[
      ["Dataset", v.dataset], ["Mode", v.mode], ["Policy", v.policy], ["Threshold", v.threshold || "none"],
      ["File", v.file ? `${file} (${v.file.format.toUpperCase()}, ${num(v.file.size)} bytes)` : file || "—"],
      ["Requested", when(v.requested_at)], ["Finished", when(v.finished_at)],
      ["Took", duration(v.requested_at, v.finished_at)], ["Id", v.uuid],
    ].flatMap(([k, val]) => [h("dt", {}, k), h("dd", {}, val)]));
  }

  async function refresh() {
    renderView(await api(`/imports/${ticket}`));
    if (view.rows.failed || TERMINAL.has(view.state)) await renderFailures();
  }

  function scheduleRefresh() { // at most one view request in flight; events in a burst share it
    if (refreshing) { refreshing.again = true; return; }
    refreshing = { again: false };
    refresh().catch(fail).finally(() => {
      const again = refreshing.again;
      refreshing = null;
      if (again) scheduleRefresh();
    });
  }

  async function renderFailures() {
    const page = await api(`/imports/${ticket}/results?outcome=failed&limit=20`);
    const actions = h("div", { class: "actions" },
      h("button", { class: "button", id: "errors-csv", onclick: () => download(ticket, "errors.csv").catch(fail) }, "Error report (CSV)"),
      view.file && view.file.format === "xlsx"
        ? h("button", { class: "button", onclick: () => download(ticket, "errors.xlsx").catch(fail) }, "Error report (XLSX)") : null);
    const rows = page.items.map((r) => h("tr", {},
      h("td", {}, r.line ? `line ${r.line}` : `row ${r.index + 1}`),
      h("td", {}, (r.error || "").replace(/^line \d+: /, "")))); // the first column names the line
    failures.replaceChildren(
      h("div", { class: "section-head" }, h("h2", {}, view.rows.failed ? `First failed rows (${num(view.rows.failed)} in all)` : "Failed rows"),
        view.rows.failed ? actions : null),
      rows.length ? h("table", { class: "failures" }, h("tbody", {}, rows)) : h("p", { class: "muted" }, "No row failed."));
  }

  await refresh();
  await follow(ticket, (e) => {
    const following = timeline.scrollTop + timeline.clientHeight >= timeline.scrollHeight - 8;
    timeline.append(timelineItem(e));
    if (following) timeline.scrollTop = timeline.scrollHeight; // keep the newest in view
    scheduleRefresh();
  }, live);
  scheduleRefresh();
}

async function follow(ticket, onEvent, live) {
  // The ticket's log over SSE; on a dropped connection, resume after the last event seen.
  let last = 0;
  for (let attempt = 0; attempt < 30; attempt++) {
    try {
      const resp = await fetch(`/imports/${ticket}/events`, {
        headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream", "Last-Event-ID": String(last) },
      });
      if (resp.status === 401) throw new Unauthorized();
      if (!resp.ok || !resp.body) throw new Error(`event stream: ${resp.status}`);
      live.className = "live on";
      live.textContent = "live";
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let ended = false;
      let got = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (!data) continue; // a keep-alive comment
          const event = JSON.parse(data);
          last = event.seq;
          got += 1;
          onEvent(event);
          ended = ended || ["import_completed", "import_failed", "import_canceled"].includes(event.type);
        }
      }
      if (ended || (!got && last > 0)) { // the terminal event came, or had come before we resumed
        live.className = "live";
        live.textContent = "finished";
        return;
      }
    } catch (error) {
      if (error instanceof Unauthorized) throw error;
      live.className = "live";
      live.textContent = "reconnecting";
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---- routing ---------------------------------------------------------------------------------

function route() {
  takeTokenFromFragment();
  if (!token()) return signIn();
  const signout = document.getElementById("signout");
  signout.hidden = false;
  signout.onclick = () => { sessionStorage.removeItem(TOKEN_KEY); signIn(); };
  const m = location.pathname.match(/^\/ui\/imports\/(\d+)\/?$/);
  (m ? importPage(Number(m[1])) : listPage()).catch(fail);
}

window.addEventListener("hashchange", route);
route();
