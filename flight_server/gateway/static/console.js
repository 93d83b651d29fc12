// The OmniSQL console: plain JavaScript over POST /v1/query, no build step and no dependency.
// Every value from the server is put on the page as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function token() {
  const picker = $("token-picker");
  return picker.hidden ? $("token").value.trim() : picker.value;
}

async function loadConfig() {
  const config = await (await fetch("/console/config")).json();
  const tokens = Object.entries(config.tokens || {});
  if (tokens.length) {  // demo mode: pick a principal instead of typing a token
    const picker = $("token-picker");
    for (const [name, value] of tokens) picker.append(el("option", {value}, name));
    picker.append(el("option", {value: "not-a-valid-token"}, "(invalid token)"));
    picker.hidden = false;
    $("token").hidden = true;
  }
  for (const [name, sql] of Object.entries(config.templates || {})) {
    const button = el("button", {type: "button", "data-template": name, title: sql}, name.replaceAll("_", " "));
    button.addEventListener("click", () => { $("sql").value = sql; run(); });
    $("templates").append(button);
  }
}

function setStatus(text) { $("status").textContent = text; }

async function run(explain) {
  let sql = $("sql").value.trim();
  if (explain && !/^explain\b/i.test(sql)) sql = "EXPLAIN " + sql;
  const metadata = $("cached").checked ? {max_staleness_ms: 60000} : {};
  setStatus("running…");
  const started = performance.now();
  let response, body;
  try {
    response = await fetch("/v1/query", {method: "POST", headers: {"Content-Type": "application/json",
      "X-User-Token": token()}, body: JSON.stringify({sql, metadata})});
    body = await response.json();
  } catch (error) {
    showError({code: "NETWORK", message: "the server did not answer: " + error}, 0);
    setStatus("");
    return;
  }
  const ms = Math.round(performance.now() - started);
  if (!response.ok) {
    showError(body.error || {code: "HTTP_" + response.status, message: response.statusText}, response.status);
    setStatus(`HTTP ${response.status} in ${ms} ms`);
    return;
  }
  $("error").hidden = true;
  setStatus(`${body.row_count} row${body.row_count === 1 ? "" : "s"} in ${ms} ms`);
  showMeta(body);
  if (isExplain(body.columns)) { showPlan(body.rows); showTable({columns: [], rows: []}); }
  else { $("plan").hidden = true; showTable(body); }
}

function showError(error, status) {
  const box = $("error");
  box.replaceChildren(el("span", {class: "code"}, `${status ? status + " " : ""}${error.code}`), error.message,
                      error.trace_id ? el("div", {class: "ms"}, "trace " + error.trace_id) : "");
  box.hidden = false;
  $("meta").hidden = true;
  $("plan").hidden = true;
  showTable({columns: [], rows: []});
}

function showMeta(body) {
  const items = [
    ["API calls", body.api_calls], ["from cache", body.from_cache ? "yes" : "no"],
    ["freshness", `${Math.round(body.freshness_ms)} ms`], ["total", `${body.timing.total_ms.toFixed(1)} ms`],
    ["planning", `${body.timing.planning_ms.toFixed(1)} ms`], ["fetch", `${body.timing.fetch_ms.toFixed(1)} ms`],
    ["security", `${body.timing.security_ms.toFixed(1)} ms`], ["DuckDB", `${body.timing.duckdb_ms.toFixed(1)} ms`],
  ];
  for (const [connector, status] of Object.entries(body.rate_limit_status || {})) {
    items.push([`${connector} budget left`, status.remaining ?? "unknown"]);
  }
  items.push(["trace id", body.trace_id]);
  $("meta-list").replaceChildren(...items.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
  $("sources").replaceChildren(...(body.sources || []).map((s) => el("span",
    {class: "source" + (s.cache_hits ? " hit" : ""), "data-table": s.table},
    `${s.table} AS ${s.alias}: ${s.strategy}, ${s.api_calls} API calls, ${s.cache_hits} cache hits, ${s.rows} rows`)));
  showWaterfall(body.steps || []);
  $("meta").hidden = false;
}

function showWaterfall(steps) {
  const end = Math.max(1, ...steps.map((s) => s.start_ms + s.duration_ms));
  $("waterfall").replaceChildren(...steps.map((s) => {
    const kind = s.name.startsWith("fetch") ? "fetch" : s.name;
    const bar = el("div", {class: "bar " + kind});
    bar.style.left = `${(100 * s.start_ms) / end}%`;
    bar.style.width = `${(100 * s.duration_ms) / end}%`;
    return el("div", {class: "bar-row", "data-step": s.name}, el("span", {}, s.name),
              el("div", {class: "bar-track"}, bar), el("span", {class: "ms"}, `${s.duration_ms.toFixed(1)} ms`));
  }));
}

function isExplain(columns) {
  const names = new Set(columns.map((c) => c.name));
  return names.has("source_table") && names.has("strategy") && names.has("est_api_calls");
}

function showPlan(rows) {
  const fields = ["strategy", "pushed_exact", "pushed_inexact", "local", "projection", "lookups", "binding", "limit",
                  "order_by", "requests", "est_api_calls", "est_pages", "api_calls", "rows", "cache_hits", "ms"];
  $("plan").replaceChildren(el("h3", {}, "Plan"), ...rows.map((row) => {
    if (row.strategy === "duckdb" || row.strategy === "arrow") {
      const engine = row.strategy === "arrow" ? "Arrow compute" : "DuckDB";
      return el("div", {class: "step"}, el("h4", {}, `step ${row.step}: ${engine}`), el("pre", {}, row.local || ""));
    }
    const kv = fields.filter((f) => row[f] !== null && row[f] !== undefined)
      .map((f) => el("div", {class: "kv"}, el("b", {}, f + ": "), String(row[f])));
    return el("div", {class: "step"}, el("h4", {}, `step ${row.step} (wave ${row.wave}): ${row.source_table} AS ${row.alias}`),
              ...kv);
  }));
  $("plan").hidden = false;
}

function showTable(body) {
  $("results").hidden = body.columns.length === 0;
  const head = el("tr", {}, ...body.columns.map((c) => el("th", {}, c.name, el("small", {}, c.type))));
  $("table").tHead.replaceChildren(head);
  $("table").tBodies[0].replaceChildren(...body.rows.map((row) => el("tr", {}, ...body.columns.map((c) => {
    const value = row[c.name];
    if (value === null || value === undefined) return el("td", {class: "null"}, "NULL");
    return el("td", {title: typeof value === "object" ? JSON.stringify(value) : String(value)},
              typeof value === "object" ? JSON.stringify(value) : String(value));
  }))));
}

$("run").addEventListener("click", () => run(false));
$("explain").addEventListener("click", () => run(true));
$("sql").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(false); }
});
loadConfig();
