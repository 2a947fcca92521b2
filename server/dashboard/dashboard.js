// ringkv dashboard: plain JavaScript, no framework, no network but the node.
// Once a second it fetches /api/status, /api/ring, /api/stats and /metrics,
// and redraws (hint queues come from /metrics, which the node keeps in
// memory; /api/hints scans the hints on disk, too slow to poll). Rates and
// latency quantiles come from the
// differences between two successive scrapes of the Prometheus counters
// (ringkv_requests_total, ringkv_request_duration_seconds_bucket), the way
// Prometheus' rate() and histogram_quantile() compute them; the time between
// two scrapes is the node's own (ringkv_uptime_seconds), so a slow or
// throttled browser tab does not skew the rates.
"use strict";

const POLL_MS = 1000;
const HISTORY = 60;  // points kept per chart (seconds)
const PALETTE = ["#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00acc1", "#f4511e", "#3949ab",
                 "#7cb342", "#d81b60", "#6d4c41", "#5e35b1", "#00897b", "#c0ca33", "#546e7a"];
const SVGNS = "http://www.w3.org/2000/svg";

const state = { prev: null, ops: [], latency: [], colors: {} };

function $(id) { return document.getElementById(id); }
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function fmt(n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 0 : digits });
}
function bytes(n) {
  if (!(n >= 0)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return fmt(n, i ? 1 : 0) + " " + units[i];
}

// --- Prometheus text format ----------------------------------------------------
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while ((l = re.exec(m[2] || "")) !== null) labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    samples.push({ name: m[1], labels, value: m[3] === "+Inf" ? Infinity : parseFloat(m[3]) });
  }
  return samples;
}
function requestCounts(samples) {
  const out = {};
  for (const s of samples) {
    if (s.name === "ringkv_requests_total") out[s.labels.op] = (out[s.labels.op] || 0) + s.value;
  }
  return out;
}
function sampleValue(samples, name) {
  const s = samples.find(x => x.name === name);
  return s ? s.value : null;
}
function latencyBuckets(samples) {  // op -> [[le, cumulative count], ...]
  const out = {};
  for (const s of samples) {
    if (s.name !== "ringkv_request_duration_seconds_bucket") continue;
    const le = s.labels.le === "+Inf" ? Infinity : parseFloat(s.labels.le);
    (out[s.labels.op] = out[s.labels.op] || []).push([le, s.value]);
  }
  for (const op in out) out[op].sort((a, b) => a[0] - b[0]);
  return out;
}
// The q-quantile of the requests between two scrapes (histogram_quantile).
function quantile(q, now, before) {
  if (!now || !before || now.length !== before.length) return null;
  const delta = now.map((b, i) => [b[0], b[1] - before[i][1]]);
  const total = delta[delta.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerBound = 0, lowerCount = 0;
  for (const [le, count] of delta) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      return lowerBound + (le - lowerBound) * (count === lowerCount ? 0 : (rank - lowerCount) / (count - lowerCount));
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}

// --- drawing -----------------------------------------------------------------------
function colorOf(id) {
  if (!(id in state.colors)) state.colors[id] = PALETTE[Object.keys(state.colors).length % PALETTE.length];
  return state.colors[id];
}

function drawRing(ring, alive) {
  const root = $("ring");
  root.replaceChildren();
  const q = ring.partitions.length;
  const r1 = 105, r2 = 160;
  const arc = (a, r) => [Math.sin(a) * r, -Math.cos(a) * r].map(v => v.toFixed(2)).join(" ");
  ring.partitions.forEach((p, i) => {
    const a0 = (2 * Math.PI * i) / q, a1 = (2 * Math.PI * (i + 1)) / q;
    const large = a1 - a0 > Math.PI ? 1 : 0;
    const owner = p.primaries[0];
    const d = `M ${arc(a0, r1)} L ${arc(a0, r2)} A ${r2} ${r2} 0 ${large} 1 ${arc(a1, r2)} ` +
              `L ${arc(a1, r1)} A ${r1} ${r1} 0 ${large} 0 ${arc(a0, r1)} Z`;
    const path = svg("path", { d, fill: colorOf(owner), "data-partition": String(p.partition),
                               "data-owner": owner,
                               class: "partition" + (alive[owner] === false ? " owner-down" : "") });
    const title = svg("title");
    title.textContent = `partition ${p.partition} (from ${p.start}): ${p.primaries.join(", ")}`;
    path.appendChild(title);
    root.appendChild(path);
  });
  const label = svg("text", { x: 0, y: -4 });
  label.textContent = `${q} partitions`;
  const label2 = svg("text", { x: 0, y: 14 });
  label2.textContent = `n_val ${ring.n_val}, ${ring.members.length} owners`;
  root.append(label, label2);

  const legend = $("ring-legend");
  legend.replaceChildren();
  for (const n of ring.nodes) {
    const item = el("span");
    item.append(el("span", { class: "swatch", style: `background:${colorOf(n.id)}` }),
                `${n.id}: first owner of ${n.first_owner_of}, ${n.replicas} replicas (${fmt(n.percent_of_mean, 1)}% of mean)`);
    legend.appendChild(item);
  }
  $("ring-caption").textContent = "each arc is a partition, coloured by its first owner; red outline: owner down";
}

function drawMembers(status) {
  const body = $("members").tBodies[0];
  body.replaceChildren();
  const threshold = status.gossip ? status.gossip.phi_threshold : 8;
  for (const m of status.members) {
    const tr = el("tr", { "data-member": m.id, "data-alive": String(m.alive) });
    if (!m.alive) tr.classList.add("down");
    if (m.id === status.node) tr.classList.add("self");
    const phiCell = el("td", {}, m.phi >= 0 ? fmt(m.phi, 2) : "–");
    if (m.phi >= 0) {
      const w = Math.min(30, (m.phi / threshold) * 30);
      phiCell.appendChild(el("span", { class: "phi" + (m.phi >= threshold ? " hot" : ""), style: `width:${w}px` }));
    }
    const id = el("td");
    id.append(el("span", { class: "swatch", style: `background:${colorOf(m.id)}` }), m.id);
    tr.append(id, el("td", {}, m.address), el("td", { class: "state" }, m.state), phiCell,
              el("td", {}, fmt(m.owns)), el("td", {}, fmt(m.partitions_held)));
    body.appendChild(tr);
  }
  $("phi-note").textContent = `A member whose phi passes ${threshold} (or whose connection is refused) is down.`;
}

function drawChart(id, legendId, series, unit) {
  const root = $(id);
  root.replaceChildren();
  const W = 420, H = 160, L = 44, B = 18, T = 8;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  if (max <= 0) max = 1;
  const pow = Math.pow(10, Math.floor(Math.log10(max)));
  max = Math.ceil(max / pow) * pow;
  for (let i = 0; i <= 4; i++) {
    const y = T + ((H - T - B) * i) / 4;
    root.appendChild(svg("line", { x1: L, x2: W, y1: y, y2: y, class: i === 4 ? "axis" : "grid" }));
    const t = svg("text", { x: L - 4, y: y + 3, "text-anchor": "end" });
    t.textContent = fmt(max * (1 - i / 4), max < 10 ? 2 : 0);
    root.appendChild(t);
  }
  const x = i => L + ((W - L) * i) / (HISTORY - 1);
  const y = v => T + (H - T - B) * (1 - v / max);
  for (const s of series) {
    const offset = HISTORY - s.values.length;
    let points = [];
    const flush = () => {
      if (points.length) root.appendChild(svg("polyline", { points: points.join(" "), stroke: s.color, "stroke-dasharray": s.dash || "" }));
      points = [];
    };
    s.values.forEach((v, i) => {
      if (v === null) { flush(); return; }
      points.push(`${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`);
    });
    flush();
  }
  const t = svg("text", { x: W, y: H - 4, "text-anchor": "end" });
  t.textContent = `now · ${unit}`;
  root.appendChild(t);
  const legend = $(legendId);
  legend.replaceChildren();
  for (const s of series) {
    const last = [...s.values].reverse().find(v => v !== null);
    const item = el("span");
    item.append(el("span", { class: "swatch", style: `background:${s.color}` }), `${s.name}: ${fmt(last, unit === "ms" ? 2 : 0)}`);
    legend.appendChild(item);
  }
}

// Hints per target from the metrics: {target: {queued, replayed, failed}}.
function hintsFromMetrics(samples) {
  const targets = {};
  const field = { ringkv_hints_queued: "queued", ringkv_hints_replayed_total: "replayed",
                  ringkv_hint_replay_failures_total: "failed" };
  for (const s of samples) {
    if (!(s.name in field)) continue;
    const t = (targets[s.labels.target] = targets[s.labels.target] || { queued: 0, replayed: 0, failed: 0 });
    t[field[s.name]] = s.value;
  }
  return { targets, stored: sampleValue(samples, "ringkv_hints_stored_total") };
}

function drawHints(hints) {
  const body = $("hints").tBodies[0];
  body.replaceChildren();
  const targets = Object.entries(hints.targets);
  const max = Math.max(1, ...targets.map(([, t]) => t.queued));
  let queued = 0;
  for (const [id, t] of targets) {
    queued += t.queued;
    const tr = el("tr", { "data-hint-target": id });
    const bar = el("td");
    bar.appendChild(el("span", { class: "bar", style: `width:${Math.round((t.queued / max) * 120)}px` }));
    tr.append(el("td", {}, id), el("td", {}, fmt(t.queued)), bar, el("td", {}, fmt(t.replayed)),
              el("td", {}, fmt(t.failed)));
    body.appendChild(tr);
  }
  $("hints-note").textContent = targets.length
    ? `${fmt(queued)} queued in all; ${fmt(hints.stored)} stored since start (ringkv hints: their ages).`
    : "No hints: every write reached its primaries.";
}

function drawRepair(status, stats) {
  const h = status.handoff || {};
  const pulling = Object.entries(h.pulling || {}).map(([p, v]) => `${p} from ${v.from}`);
  const rows = [
    ["anti-entropy exchanges", fmt(stats.aae_exchanges)],
    ["keys repaired by anti-entropy", fmt(stats.aae_keys_repaired)],
    ["anti-entropy bytes", bytes(stats.aae_bytes)],
    ["read repairs sent", fmt(stats.read_repairs)],
    ["reads that saw siblings", `${fmt(stats.siblings_seen)} (most: ${fmt(stats.max_siblings)})`],
    ["handoff: partitions held", `${fmt(h.partitions_held)} of ring ${fmt(status.ring_size)}; ${fmt((h.pending || []).length)} pending`],
    ["handoff: pulling now", pulling.length ? pulling.join(", ") : "–"],
    ["handoff: objects in / served", `${fmt(h.objects_in)} / ${fmt(h.objects_served)}`],
    ["handoff: partitions received / dropped", `${fmt(h.partitions_received)} / ${fmt(h.dropped_partitions)}`],
    ["objects stored here", fmt(status.objects)],
  ];
  const dl = $("repair");
  dl.replaceChildren();
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", {}, v));
}

function pushPoint(list, point) {
  list.push(point);
  while (list.length > HISTORY) list.shift();
}

// --- polling -----------------------------------------------------------------------
async function fetchJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function poll() {
  try {
    const [status, ring, stats, metricsText] = await Promise.all([
      fetchJson("/api/status"), fetchJson("/api/ring"), fetchJson("/api/stats"),
      fetch("/metrics", { cache: "no-store" }).then(r => { if (!r.ok) throw new Error(`/metrics: HTTP ${r.status}`); return r.text(); }),
    ]);
    const samples = parseMetrics(metricsText);
    const now = sampleValue(samples, "ringkv_uptime_seconds");
    const counts = requestCounts(samples), buckets = latencyBuckets(samples);
    if (state.prev && now !== null && now > state.prev.at) {
      const dt = now - state.prev.at;
      const rate = op => dt > 0 ? Math.max(0, ((counts[op] || 0) - (state.prev.counts[op] || 0)) / dt) : null;
      pushPoint(state.ops, { get: rate("get"), put: rate("put"), delete: rate("delete") });
      const ms = (q, op) => { const v = quantile(q, buckets[op], state.prev.buckets[op]); return v === null ? null : v * 1000; };
      pushPoint(state.latency, { g50: ms(0.5, "get"), g99: ms(0.99, "get"), p50: ms(0.5, "put"), p99: ms(0.99, "put") });
    }
    state.prev = { at: now, counts, buckets };

    const alive = {};
    for (const m of status.members) alive[m.id] = m.alive;
    $("node-name").textContent = `${status.node} · cluster ${status.cluster}`;
    const d = status.defaults || {};
    const down = status.members.filter(m => !m.alive).length;
    $("summary").textContent = `${status.state} · ${status.members.length} members, ${down} down · ` +
      `n=${d.n} r=${d.r} w=${d.w} ${d.mode} · up ${fmt(status.uptime_s)} s`;
    drawRing(ring, alive);
    drawMembers(status);
    drawChart("ops-chart", "ops-legend", [
      { name: "get", color: "#1e88e5", values: state.ops.map(p => p.get) },
      { name: "put", color: "#43a047", values: state.ops.map(p => p.put) },
      { name: "delete", color: "#e53935", values: state.ops.map(p => p.delete) },
    ], "ops/s");
    drawChart("latency-chart", "latency-legend", [
      { name: "get p50", color: "#1e88e5", values: state.latency.map(p => p.g50) },
      { name: "get p99", color: "#1e88e5", dash: "4 3", values: state.latency.map(p => p.g99) },
      { name: "put p50", color: "#43a047", values: state.latency.map(p => p.p50) },
      { name: "put p99", color: "#43a047", dash: "4 3", values: state.latency.map(p => p.p99) },
    ], "ms");
    drawHints(hintsFromMetrics(samples));
    drawRepair(status, stats);
    const link = $("link");
    link.className = "link ok";
    link.textContent = `live · ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    const link = $("link");
    link.className = "link lost";
    link.textContent = `cannot reach the node: ${e.message}`;
  }
}

async function loop() {
  const started = performance.now();
  await poll();
  setTimeout(loop, Math.max(0, POLL_MS - (performance.now() - started)));
}
loop();
