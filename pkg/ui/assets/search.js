// search.js: GET /v1/events with every filter it has. The page's own query
// string is the API's (/ui/events?type=com.example.*&route=billing), so a
// search can be shared by its link; paging follows the API's cursor.
import {call, ApiError} from "./api.js";
import {h, fill, fmtTime, detailHref, kindTag} from "./dom.js";

const kinds = ["received", "refused", "filtered", "delivered", "deadlettered", "poison", "replayed"];

// fields are GET /v1/events's parameters, as the form shows them.
const fields = [
  {name: "from", label: "from (RFC 3339, event time)", placeholder: "2026-05-01T00:00:00Z"},
  {name: "to", label: "to (RFC 3339, exclusive)", placeholder: "2026-05-02T00:00:00Z"},
  {name: "type", label: "type (a trailing * matches a prefix)", placeholder: "com.example.order.*"},
  {name: "source", label: "source"},
  {name: "subject", label: "subject"},
  {name: "id", label: "id"},
  {name: "route", label: "route"},
  {name: "destination", label: "destination"},
  {name: "outcome", label: "outcome", options: [""].concat(kinds)},
  {name: "received_from", label: "received from (entry time)"},
  {name: "received_to", label: "received to (entry time)"},
  {name: "limit", label: "per page (1 to 10000)", placeholder: "100"},
  {name: "order", label: "order", options: ["", "asc", "desc"]},
];

export function search(main, params, ctx) {
  const errs = {};
  const inputs = {};
  const form = h("form", {class: "search", id: "search-form"});
  for (const f of fields) {
    const input = f.options
      ? h("select", {name: f.name, id: "q-" + f.name}, f.options.map((o) => h("option", {value: o, selected: params.get(f.name) === o}, o || "any")))
      : h("input", {name: f.name, id: "q-" + f.name, value: params.get(f.name) || "", placeholder: f.placeholder || "", spellcheck: "false"});
    if (f.options && params.get(f.name) && !f.options.includes(params.get(f.name))) {
      input.appendChild(h("option", {value: params.get(f.name), selected: true}, params.get(f.name)));
    }
    inputs[f.name] = input;
    errs[f.name] = h("span", {class: "field-error", id: "err-" + f.name, role: "alert"});
    form.appendChild(h("label", {}, f.label, input, errs[f.name]));
  }
  const formErr = h("p", {class: "error", id: "search-error", role: "alert"});
  form.appendChild(h("div", {class: "actions"}, h("button", {type: "submit"}, "Search"),
    h("a", {href: "/ui/events"}, "clear")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const f of fields) {
      const v = inputs[f.name].value.trim();
      if (v) q.set(f.name, v);
    }
    window.dispatchEvent(new CustomEvent("auditbus:navigate", {detail: "/ui/events?" + q}));
  });
  const results = h("div", {id: "results"}, h("p", {class: "muted"}, "Searching…"));
  fill(main, h("h1", {}, "Search event versions"), form, formErr, results);

  const q = new URLSearchParams(params);
  (async () => {
    let page;
    try {
      page = await call("GET", "/v1/events?" + q);
    } catch (e) {
      if (!(e instanceof ApiError) || !ctx.alive) return;
      fill(results);
      const m = /parameter "([a-z_]+)"/.exec(e.message);
      if (e.code === "bad_query" && m && errs[m[1]]) {
        errs[m[1]].textContent = e.message;
        inputs[m[1]].setAttribute("aria-invalid", "true");
      } else {
        formErr.textContent = e.message;
      }
      return;
    }
    if (!ctx.alive) return;
    const items = page.items || [];
    if (items.length === 0) {
      fill(results, h("p", {id: "no-results"}, q.get("cursor") ? "No more event versions match this search." : "No event versions match this search."));
      return;
    }
    const table = h("table", {id: "results-table"},
      h("thead", {}, h("tr", {}, ["time", "type", "source", "id", "subject", "outcomes", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map(row)));
    const pager = h("div", {class: "pager"});
    if (q.get("cursor")) {
      const first = new URLSearchParams(q);
      first.delete("cursor");
      pager.appendChild(h("a", {href: "/ui/events?" + first, id: "first-page"}, "« first page"));
    }
    if (page.next) {
      const next = new URLSearchParams(q);
      next.set("cursor", page.next);
      pager.appendChild(h("a", {href: "/ui/events?" + next, id: "next-page"}, "next page »"));
    } else {
      pager.appendChild(h("span", {class: "muted"}, "last page"));
    }
    const api = "/v1/events?" + q;
    fill(results, h("p", {class: "muted"}, items.length + " event versions on this page; the API's answer: ", h("a", {href: api, class: "mono"}, "GET " + api)), table, pager);
    performance.mark("auditbus:search-ready");
  })();
}

function row(it) {
  const ev = it.event || {};
  const seen = [...new Set((it.trail || []).map((e) => e.kind))];
  return h("tr", {dataset: {id: ev.id, source: ev.source}},
    h("td", {class: "mono"}, fmtTime(ev.time)),
    h("td", {}, ev.type),
    h("td", {class: "mono"}, ev.source),
    h("td", {class: "mono"}, h("a", {href: detailHref(ev)}, ev.id)),
    h("td", {}, ev.subject || ""),
    h("td", {}, seen.map(kindTag)),
    h("td", {}, it.conflict ? h("span", {class: "badge bad"}, "conflict") : ""));
}
