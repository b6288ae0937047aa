// deadletters.js: dead-lettered event versions by route and destination,
// from GET /v1/events?outcome=deadlettered, with a redrive (POST
// /v1/redrives) for each.
import {call, can, ApiError} from "./api.js";
import {h, fill, fmtTime, detailHref} from "./dom.js";

const pageSize = 500;

export function deadLetters(main, params, ctx) {
  const q = new URLSearchParams({outcome: "deadlettered", order: "desc", limit: String(pageSize)});
  for (const k of ["route", "from", "to", "cursor"]) if (params.get(k)) q.set(k, params.get(k));
  const body = h("div", {id: "deadletters"}, h("p", {class: "muted"}, "Loading…"));
  fill(main, h("h1", {}, "Dead letters"), body);
  (async () => {
    let page;
    try {
      page = await call("GET", "/v1/events?" + q);
    } catch (e) {
      if (e instanceof ApiError && ctx.alive) fill(body, h("p", {class: "error"}, e.message));
      return;
    }
    if (!ctx.alive) return;
    // Group by the dead-letter entries' route and destination; a later
    // delivery to the same destination means it was redriven.
    const groups = new Map();
    for (const it of page.items || []) {
      const trail = it.trail || [];
      trail.forEach((e, i) => {
        if (e.kind !== "deadlettered") return;
        const key = e.route + "\u0000" + e.destination;
        if (!groups.has(key)) groups.set(key, {route: e.route, destination: e.destination, rows: []});
        const later = trail.slice(i + 1).some((d) => d.kind === "delivered" && d.route === e.route && d.destination === e.destination);
        groups.get(key).rows.push({it, e, later});
      });
    }
    if (groups.size === 0) {
      fill(body, h("p", {id: "no-deadletters"}, "No dead-lettered event versions."));
      return;
    }
    const allowed = can("replay:write", "audit:read");
    fill(body,
      allowed ? "" : h("p", {class: "muted", id: "redrive-denied"}, "Your token lacks replay:write and audit:read together, so redrive is off."),
      [...groups.values()].map((g) => group(g, allowed)),
      page.next ? h("p", {}, "Showing the newest " + pageSize + " dead-lettered versions; ",
        h("a", {href: "/ui/deadletters?cursor=" + encodeURIComponent(page.next)}, "older »")) : "");
  })();
}

function group(g, allowed) {
  const waiting = g.rows.filter((r) => !r.later).length;
  const btn = h("button", {type: "button", class: "redrive", dataset: {route: g.route, destination: g.destination},
    disabled: !allowed || waiting === 0, title: allowed ? "publish these again to " + g.destination : "needs scopes replay:write and audit:read"}, "Redrive");
  const result = h("span", {class: "redrive-result"});
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      const res = await call("POST", "/v1/redrives", {route: g.route, destination: g.destination, name: "redrive " + g.route + "/" + g.destination + " from the explorer"});
      const jobs = res.jobs || [];
      fill(result, jobs.length ? ["started ", jobs.map((j) => h("a", {href: "/ui/replays", class: "mono"}, j.id))] : "nothing left to redrive");
    } catch (e) {
      btn.disabled = false;
      if (e instanceof ApiError) fill(result, h("span", {class: "error"}, e.message));
    }
  });
  return h("section", {class: "panel", dataset: {route: g.route, destination: g.destination}},
    h("div", {class: "toolbar"},
      h("h2", {}, "route " + g.route + " → " + g.destination),
      h("span", {class: "muted"}, waiting + " waiting, " + (g.rows.length - waiting) + " delivered since"), btn, result),
    h("table", {},
      h("thead", {}, h("tr", {}, ["dead-lettered", "type", "source", "id", "attempts", "error", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, g.rows.map(({it, e, later}) => h("tr", {},
        h("td", {class: "mono"}, fmtTime(e.time)),
        h("td", {}, it.event.type),
        h("td", {class: "mono"}, it.event.source),
        h("td", {class: "mono"}, h("a", {href: detailHref(it.event)}, it.event.id)),
        h("td", {}, String(e.attempts || "")),
        h("td", {class: "error"}, e.error || ""),
        h("td", {}, later ? h("span", {class: "badge ok"}, "delivered since") : ""))))));
}
