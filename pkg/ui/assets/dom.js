// dom.js: building elements. Every string becomes a text node, so what
// the audit store holds is shown as text and never parsed as HTML.

// h makes an element: h("a", {href: "/ui/"}, "text", child, [more]).
// Attributes named on* are refused, so no handler comes from a string.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) throw new Error("h: attribute " + k + " not allowed; use addEventListener");
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// clear empties el and fills it with children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// fmtTime shows an RFC 3339 time in UTC, to the millisecond.
export function fmtTime(s) {
  if (!s) return "";
  const d = new Date(s);
  if (isNaN(d)) return String(s);
  return d.toISOString().replace("T", " ").replace("Z", " UTC");
}

// fmtNum groups digits.
export function fmtNum(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : String(n);
}

// detailHref is the page of one event version.
export function detailHref(ev) {
  return "/ui/events/" + encodeURIComponent(ev.id) + "?source=" + encodeURIComponent(ev.source);
}

// kindTag shows an entry kind.
export function kindTag(kind) {
  return h("span", {class: "kind kind-" + kind}, kind);
}
