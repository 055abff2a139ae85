// gradd dashboard: the sessions table, the chosen session's loss curve (uPlot) and graph.
// Fed by server-sent events from /events: a "snapshot" of everything when connected, then
// "update"s of what changed. Every text from the server is set as text, never as markup.
"use strict";

const rows = new Map(); // session id -> its row (label, device, age, steps, rate, ...)
const points = new Map(); // session id -> {steps: [], losses: []}
let graphOf = null; // the session whose graph the page shows
let graphSeq = 0; // and the number of the snapshot shown (0: none)
let chosen = null; // the session whose curve and graph are shown
let plot = null;
let plotKey = ""; // what the plot was built for: session and scale

const $ = (id) => document.getElementById(id);

function human(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
}

function bytes(n) {
  if (n === null || n === undefined) return "-";
  let value = n;
  for (const unit of ["B", "KiB", "MiB", "GiB"]) {
    if (value < 1024 || unit === "GiB") return unit === "B" ? `${value} B` : `${value.toFixed(1)} ${unit}`;
    value /= 1024;
  }
  return "-";
}

function statusOf(row) {
  if (row.ended) return `ended (${row.ended})`;
  if (row.error) return `not watched: ${row.error}`;
  return row.steps > 0 ? "training" : "open";
}

function apply(message, isSnapshot) {
  if (isSnapshot) {
    rows.clear();
    points.clear();
    graphOf = null;
  }
  if ("listing_error" in message) {
    const problem = $("server-status");
    problem.textContent = message.listing_error ? `listing the sessions failed: ${message.listing_error}` : "";
    problem.hidden = !message.listing_error;
  }
  for (const id of message.forget || []) rows.delete(id), points.delete(id);
  for (const row of message.sessions) rows.set(row.id, row);
  for (const [id, pts] of Object.entries(message.replace || {})) points.set(id, { steps: [], losses: [] }), append(id, pts);
  for (const [id, pts] of Object.entries(message.points || {})) append(id, pts);
  if (chosen === null || !rows.has(chosen)) {
    const live = [...rows.values()].find((r) => !r.ended);
    const first = live || rows.values().next().value;
    chosen = first ? first.id : null;
  }
  renderTable();
  renderDetail();
}

function append(id, pts) {
  let series = points.get(id);
  if (!series) points.set(id, (series = { steps: [], losses: [] }));
  for (const [step, loss] of pts) {
    series.steps.push(step);
    series.losses.push(loss);
  }
}

const trs = new Map(); // session id -> its table row, updated in place (clicks stay on it)
const COLUMNS = ["label", "id", "device", "age num", "steps num", "rate num", "memory num", "status"];

function rowElement(id) {
  let tr = trs.get(id);
  if (tr) return tr;
  tr = document.createElement("tr");
  tr.dataset.session = id;
  for (const cls of COLUMNS) {
    const td = document.createElement("td");
    td.className = cls;
    tr.appendChild(td);
  }
  tr.addEventListener("click", () => {
    chosen = id;
    renderTable();
    renderDetail();
  });
  trs.set(id, tr);
  return tr;
}

function renderTable() {
  const body = document.querySelector("#sessions tbody");
  for (const [id, tr] of trs) {
    if (!rows.has(id)) {
      tr.remove();
      trs.delete(id);
    }
  }
  for (const row of rows.values()) {
    const tr = rowElement(row.id);
    tr.dataset.label = row.label;
    tr.classList.toggle("ended", Boolean(row.ended));
    tr.classList.toggle("chosen", row.id === chosen);
    const texts = [
      row.label || "-",
      row.id,
      row.device || "-",
      human(row.age),
      String(row.steps),
      row.rate === null ? "-" : `${row.rate.toFixed(1)}/s`,
      bytes(row.bytes),
      statusOf(row),
    ];
    texts.forEach((text, i) => {
      if (tr.cells[i].textContent !== text) tr.cells[i].textContent = text;
    });
    tr.cells[7].classList.toggle("failed", Boolean(row.error && !row.ended));
    if (tr.parentNode !== body) body.appendChild(tr);
  }
  $("empty").hidden = rows.size > 0;
}

// TensorBoard's smoothing: an exponential moving average, debiased at the start.
function smooth(values, weight) {
  const out = new Array(values.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    count++;
    out[i] = weight === 0 ? v : last / (1 - Math.pow(weight, count));
  }
  return out;
}

function plotData(series, logScale) {
  const ys = logScale ? series.losses.map((v) => (v > 0 ? v : null)) : series.losses;
  return [series.steps, ys, smooth(ys, Number($("smoothing").value))];
}

function renderChart() {
  const el = $("chart");
  const series = points.get(chosen) || { steps: [], losses: [] };
  const logScale = $("log-scale").checked;
  const key = `${chosen}|${logScale}`;
  const data = plotData(series, logScale);
  if (plot === null || plotKey !== key) {
    if (plot !== null) plot.destroy();
    plot = new uPlot(
      {
        width: Math.max(320, el.clientWidth || 800),
        height: 320,
        scales: { x: { time: false }, y: logScale ? { distr: 3 } : {} },
        axes: [{ label: "step" }, { label: "loss" }],
        series: [
          { label: "step" },
          { label: "loss", stroke: "rgba(43,108,176,0.35)", width: 1 },
          { label: "smoothed", stroke: "#2b6cb0", width: 2 },
        ],
      },
      data,
      el,
    );
    plotKey = key;
  } else {
    plot.setData(data);
  }
  el.dataset.points = String(series.steps.length);
  $("point-count").textContent = `${series.steps.length} points`;
}

async function renderGraph(row) {
  if (graphOf !== row.id) {
    const p = document.createElement("p");
    p.className = "none";
    p.textContent = "No graph snapshot yet.";
    $("graph").replaceChildren(p);
    $("graph-caption").textContent = "";
    graphOf = row.id;
    graphSeq = 0;
  }
  if (!row.graph || graphSeq === row.graph) return;
  graphSeq = row.graph;
  const response = await fetch(`/graph/${encodeURIComponent(row.id)}.svg`);
  if (!response.ok || chosen !== row.id) return;
  const text = await response.text();
  const box = $("graph");
  if ((response.headers.get("content-type") || "").startsWith("image/svg+xml")) {
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    for (const s of svg.querySelectorAll("script, foreignObject")) s.remove();
    box.replaceChildren(document.importNode(svg, true));
    box.dataset.step = String(row.graph_step);
  } else {
    const pre = document.createElement("pre"); // Graphviz is not installed: its DOT text
    pre.textContent = text;
    box.replaceChildren(pre);
  }
  $("graph-caption").textContent = `(step ${row.graph_step})`;
}

function renderDetail() {
  const row = chosen === null ? null : rows.get(chosen);
  $("detail").hidden = row === null || row === undefined;
  if (!row) return;
  const name = row.label ? `${row.label} (${row.id})` : row.id;
  $("chosen").textContent = row.ended ? `${name}: ended (${row.ended})` : name;
  renderChart();
  renderGraph(row).catch(() => {
    graphSeq = 0; // drawn at the next update
  });
}

function connect() {
  const source = new EventSource("/events");
  const state = $("connection");
  source.addEventListener("open", () => {
    state.textContent = "live";
    state.className = "live";
  });
  source.addEventListener("error", () => {
    state.textContent = "reconnecting"; // EventSource reconnects by itself
    state.className = "connecting";
  });
  source.addEventListener("snapshot", (e) => apply(JSON.parse(e.data), true));
  source.addEventListener("update", (e) => apply(JSON.parse(e.data), false));
}

window.addEventListener("DOMContentLoaded", () => {
  $("log-scale").addEventListener("change", renderDetail);
  $("smoothing").addEventListener("input", () => {
    $("smoothing-value").textContent = Number($("smoothing").value).toFixed(2);
    if (plot !== null) plot.setData(plotData(points.get(chosen) || { steps: [], losses: [] }, $("log-scale").checked));
  });
  connect();
});
