// overview.js: event versions per bucket over a time range, stacked by
// type, from GET /v1/counts, with the range's totals; refreshes itself.
// Ranges run from and to whole minutes, in buckets of whole minutes, which
// the store answers from its per-minute counts whatever the number of
// events.
import uPlot from "./vendor/uplot/uPlot.esm.js";
import {call} from "./api.js";
import {h, fill, fmtNum} from "./dom.js";

// ranges are the choices of time range, each with its bucket width.
const ranges = [
  {name: "15m", label: "last 15 minutes", ms: 15 * 60e3, bucket: "1m"},
  {name: "1h", label: "last hour", ms: 3600e3, bucket: "1m"},
  {name: "6h", label: "last 6 hours", ms: 6 * 3600e3, bucket: "5m"},
  {name: "24h", label: "last 24 hours", ms: 24 * 3600e3, bucket: "20m"},
  {name: "7d", label: "last 7 days", ms: 7 * 24 * 3600e3, bucket: "2h"},
];
const refreshMs = 10e3;
const totalsMs = 10e3;
const palette = ["#2458c6", "#067647", "#b54708", "#b42318", "#6941c6", "#0e9384", "#c11574", "#475467", "#4e5ba6", "#ca8504"];
const outcomeColors = {received: "#667085", refused: "#c11574", delivered: "#067647", filtered: "#b54708", deadlettered: "#b42318", poison: "#7a271a", replayed: "#2458c6"};
// outcomes are the totals shown, in order: versions, then entries by kind.
const outcomes = [
  ["versions", "event versions"], ["conflicts", "conflicts"], ["received", "receptions"], ["delivered", "deliveries"],
  ["filtered", "filtered"], ["deadlettered", "dead letters"], ["poison", "poison"], ["replayed", "replays"], ["refused", "refused"],
];

export function overview(main, params, ctx) {
  const range = ranges.find((r) => r.name === params.get("range")) || ranges[1];
  const by = params.get("by") === "outcome" ? "outcome" : "type";
  const select = h("select", {id: "range", "aria-label": "time range"},
    ranges.map((r) => h("option", {value: r.name, selected: r === range}, r.label)));
  const bySelect = h("select", {id: "by", "aria-label": "stack by"},
    [["type", "stacked by type"], ["outcome", "stacked by outcome"]].map(([v, l]) => h("option", {value: v, selected: v === by}, l)));
  const go = () => window.dispatchEvent(new CustomEvent("auditbus:navigate",
    {detail: "/ui/?" + new URLSearchParams({range: select.value, by: bySelect.value})}));
  select.addEventListener("change", go);
  bySelect.addEventListener("change", go);
  const status = h("span", {class: "muted", id: "refreshed"});
  const cards = h("div", {class: "cards", id: "totals"});
  const chartEl = h("div", {class: "chart", id: "chart"});
  fill(main,
    h("h1", {}, "Overview"),
    h("div", {class: "toolbar"}, select, bySelect, status),
    cards,
    h("div", {class: "panel"}, h("h2", {}, by === "type"
      ? "Event versions per " + range.bucket + ", stacked by type"
      : "What routes did per " + range.bucket + " (entries with a route), stacked by outcome"), chartEl));

  let plot = null;
  let timer = 0;
  // The chart comes first, then the totals. totalsAt is when the last
  // totals count as taken.
  let totalsAt = 0;
  async function load() {
    // The range ends with the current minute, whole.
    const now = new Date();
    const to = new Date(Math.ceil(now.getTime() / 60e3) * 60e3);
    const from = new Date(to.getTime() - range.ms);
    const q = new URLSearchParams({from: from.toISOString(), to: to.toISOString()});
    const failed = [];
    try {
      const data = await call("GET", "/v1/counts?" + q + "&bucket=" + range.bucket + (by === "outcome" ? "&by=outcome" : ""));
      if (!ctx.alive) return;
      plot = draw(chartEl, plot, from, to, range, (data.counts || []).map((c) => ({start: c.start, key: c.type || c.outcome, n: c.n})), by);
      // The first drawing is when the page became usable; the load
      // benchmark reads this mark.
      if (!performance.getEntriesByName("auditbus:overview-ready").length) performance.mark("auditbus:overview-ready");
    } catch (e) {
      failed.push(e);
    }
    if (ctx.alive && Date.now() - totalsAt >= totalsMs) {
      try {
        const began = Date.now();
        const t = (await call("GET", "/v1/totals?" + q)).totals || {};
        // Totals that took long wait ten times as long before the next,
        // so an open page never keeps the daemon busy counting.
        totalsAt = Date.now() + Math.max(0, 10 * (Date.now() - began) - totalsMs);
        if (ctx.alive) {
          fill(cards, outcomes.filter(([k]) => k in t).map(([k, label]) =>
            h("div", {class: "card", dataset: {total: k}}, h("div", {class: "n"}, fmtNum(t[k])), h("div", {class: "l"}, label))));
          if (!performance.getEntriesByName("auditbus:totals-ready").length) performance.mark("auditbus:totals-ready");
        }
      } catch (e) {
        failed.push(e);
      }
    }
    if (!ctx.alive) return;
    status.textContent = failed.length
      ? "could not refresh: " + failed.map((e) => e.message).join("; ")
      : "refreshed " + now.toISOString().slice(11, 19) + " UTC, every " + refreshMs / 1e3 + " s";
    timer = setTimeout(load, refreshMs);
  }
  load();
  const resize = () => plot && plot.setSize({width: chartEl.clientWidth, height: 300});
  window.addEventListener("resize", resize);
  return () => {
    clearTimeout(timer);
    window.removeEventListener("resize", resize);
    if (plot) plot.destroy();
  };
}

// draw builds the stacked chart: one series per type, each the sum of
// itself and those under it, drawn top first so each fill shows its own
// band.
function draw(el, old, from, to, range, counts, by) {
  const step = parseStep(range.bucket);
  const start = Math.floor(from.getTime() / 1000);
  const n = Math.ceil(range.ms / 1000 / step);
  const xs = Array.from({length: n}, (_, i) => start + i * step);
  const types = [...new Set(counts.map((c) => c.key))].sort();
  const rows = types.map(() => new Array(n).fill(0));
  let sum = 0;
  for (const c of counts) {
    const i = Math.floor((Date.parse(c.start) / 1000 - start) / step);
    if (i >= 0 && i < n) rows[types.indexOf(c.key)][i] += c.n;
    sum += c.n;
  }
  el.dataset.total = String(sum);
  el.dataset.types = types.join(" ");
  const stacked = rows.map((r) => r.slice());
  for (let k = 1; k < stacked.length; k++) for (let i = 0; i < n; i++) stacked[k][i] += stacked[k - 1][i];
  const order = types.map((_, k) => k).reverse();
  const color = (k) => (by === "outcome" && outcomeColors[types[k]]) || palette[k % palette.length];
  const series = [{label: "time (UTC)", value: (u, v) => v == null ? "" : new Date(v * 1000).toISOString().slice(11, 19)}].concat(order.map((k) => ({
    label: types[k],
    stroke: color(k),
    fill: color(k) + "99",
    width: 1,
    value: (u, v, si, idx) => idx == null ? "" : fmtNum(rows[k][idx]),
  })));
  const data = [xs].concat(order.map((k) => stacked[k]));
  if (old) old.destroy();
  el.replaceChildren();
  if (types.length === 0) {
    el.appendChild(h("p", {class: "muted", id: "chart-empty"}, by === "type" ? "No event versions in this range." : "No route did anything in this range."));
    return null;
  }
  return new uPlot({
    width: el.clientWidth || 900,
    height: 300,
    series,
    scales: {x: {time: true}, y: {range: (u, lo, hi) => [0, Math.max(1, hi)]}},
    axes: [{}, {label: (by === "type" ? "versions" : "entries") + " per " + range.bucket}],
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
  }, data, el);
}

function parseStep(b) {
  const n = parseInt(b, 10);
  return b.endsWith("h") ? n * 3600 : b.endsWith("m") ? n * 60 : n;
}
