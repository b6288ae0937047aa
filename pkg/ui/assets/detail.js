// detail.js: one event at /ui/events/{id}?source=S, from GET
// /v1/events/{id}: every version with its attributes, its data and its
// difference from the first, and its trail as a timeline.
import {call, ApiError} from "./api.js";
import {h, fill, fmtTime, kindTag} from "./dom.js";
import {diffLines} from "./diff.js";
import {badge} from "./verify.js";

// core are the attributes every event may have; the others are extensions.
const core = ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema"];

export function detail(main, params, ctx) {
  const id = decodeURIComponent(location.pathname.slice("/ui/events/".length));
  const q = new URLSearchParams();
  if (params.get("source")) q.set("source", params.get("source"));
  const api = "/v1/events/" + encodeURIComponent(id) + (q.size ? "?" + q : "");
  const body = h("div", {id: "detail"}, h("p", {class: "muted"}, "Loading…"));
  fill(main, h("h1", {}, "Event ", h("span", {class: "mono"}, id)), body);
  (async () => {
    let res;
    try {
      res = await call("GET", api);
    } catch (e) {
      if (e instanceof ApiError && ctx.alive) fill(body, h("p", {class: "error", id: "detail-error"}, e.message));
      return;
    }
    if (!ctx.alive) return;
    const items = res.items || [];
    const texts = items.map((it) => dataText(it.event || {}));
    fill(body,
      h("p", {class: "muted"}, items.length === 1 ? "One version" : items.length + " versions of the same source and id (a conflict)",
        "; the API's answer: ", h("a", {href: api, class: "mono"}, "GET " + api)),
      items.map((it, i) => version(it, i, items, texts)));
  })();
}

function version(it, i, items, texts) {
  const ev = it.event || {};
  const attrs = core.filter((k) => k in ev).concat(Object.keys(ev).filter((k) => !core.includes(k) && k !== "data" && k !== "data_base64").sort());
  const first = items[0].event || {};
  const trail = it.trail || [];
  const sec = h("section", {class: "panel version" + (it.conflict ? " conflict" : ""), dataset: {digest: it.digest}},
    h("h2", {}, "Version " + (i + 1) + " ", h("span", {class: "mono muted"}, it.digest), " ",
      it.conflict ? h("span", {class: "badge bad"}, "conflict: stored after another version") : ""),
    h("div", {class: "cols"},
      h("div", {},
        h("h3", {}, "Attributes and extensions"),
        h("dl", {class: "attrs"}, attrs.map((k) => [h("dt", {}, k), h("dd", {class: i > 0 && first[k] !== ev[k] ? "error" : ""}, typeof ev[k] === "string" ? ev[k] : JSON.stringify(ev[k]))])),
        h("h3", {}, "Data ", h("span", {class: "muted"}, texts[i].how)),
        h("pre", {class: "data", id: "data-" + i}, texts[i].text)),
      h("div", {},
        h("h3", {}, "Trail"),
        badge(it),
        timeline(trail))));
  if (i > 0) {
    const changed = attrs.filter((k) => first[k] !== ev[k]).concat(core.filter((k) => k in first && !(k in ev)));
    sec.appendChild(h("h3", {}, "Difference from version 1"));
    sec.appendChild(h("p", {}, changed.length ? "Attributes that differ: " + changed.join(", ") : "Same attributes."));
    sec.appendChild(diffLines(texts[0].text, texts[i].text));
  }
  return sec;
}

// timeline shows the trail in order: what happened, where, when.
function timeline(trail) {
  if (trail.length === 0) return h("p", {class: "muted"}, "No entries.");
  return h("ol", {class: "timeline", id: "trail"}, trail.map((e) => h("li", {class: "tl-" + e.kind, dataset: {kind: e.kind, destination: e.destination || ""}},
    h("span", {class: "when"}, fmtTime(e.time)), kindTag(e.kind), " ",
    describe(e),
    e.signature ? signature(e.signature) : "",
    e.error ? h("div", {class: "err"}, e.error) : "",
    h("div", {class: "muted mono"}, e.log + " #" + e.seq))));
}

// signature shows what checking the version's signature found:
// "verified: KEYID", "unsigned" or "invalid: REASON".
function signature(sig) {
  const status = sig.split(":")[0];
  return h("div", {class: "sig sig-" + status, dataset: {signature: status}}, "signature " + sig);
}

function describe(e) {
  const parts = [];
  if (e.route) parts.push("route " + e.route);
  if (e.destination) parts.push("to " + e.destination);
  if (e.transport || e.topic) parts.push("on " + [e.transport, e.topic].filter(Boolean).join("/") + (e.offset !== undefined ? " partition " + (e.partition || 0) + " offset " + e.offset : ""));
  if (e.attempts) parts.push(e.attempts === 1 ? "1 attempt" : e.attempts + " attempts");
  if (e.principal) parts.push("by " + e.principal);
  if (e.request) parts.push("request " + e.request);
  if (e.replay) parts.push("replay " + e.replay);
  if (e.trace_id) parts.push("trace " + e.trace_id + (e.span_id ? " span " + e.span_id : ""));
  return parts.join(", ");
}

// dataText renders an event's data as text: JSON pretty-printed, UTF-8
// text as it is, anything else as a hex dump.
export function dataText(ev) {
  if ("data" in ev) {
    const d = ev.data;
    if (typeof d !== "string") return {how: "(JSON)", text: JSON.stringify(d, null, 2)};
    if (/json/.test(ev.datacontenttype || "")) {
      try { return {how: "(JSON)", text: JSON.stringify(JSON.parse(d), null, 2)}; } catch { /* shown as text */ }
    }
    return {how: "(text)", text: d};
  }
  if ("data_base64" in ev) {
    const bin = Uint8Array.from(atob(ev.data_base64), (c) => c.charCodeAt(0));
    try {
      return {how: "(text, " + bin.length + " bytes)", text: new TextDecoder("utf-8", {fatal: true}).decode(bin)};
    } catch {
      return {how: "(binary, " + bin.length + " bytes, hex)", text: hex(bin)};
    }
  }
  return {how: "(none)", text: ""};
}

function hex(bin) {
  const lines = [];
  for (let o = 0; o < bin.length && o < 64 * 1024; o += 16) {
    const row = Array.from(bin.slice(o, o + 16));
    lines.push(o.toString(16).padStart(8, "0") + "  " + row.map((b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(48) +
      "  " + row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join(""));
  }
  if (bin.length > 64 * 1024) lines.push("… " + (bin.length - 64 * 1024) + " more bytes");
  return lines.join("\n");
}
