// replays.js: the replay and redrive jobs (GET /v1/replays) with their
// progress, refreshed while a job runs, and cancel (DELETE
// /v1/replays/{id}).
import {call, can, ApiError} from "./api.js";
import {h, fill, fmtTime, fmtNum} from "./dom.js";

const refreshMs = 2000;

export function replays(main, params, ctx) {
  const body = h("div", {id: "replays"}, h("p", {class: "muted"}, "Loading…"));
  fill(main, h("h1", {}, "Replay jobs"), body);
  let timer = 0;
  async function load() {
    let res;
    try {
      res = await call("GET", "/v1/replays");
    } catch (e) {
      if (e instanceof ApiError && ctx.alive && e.status !== 0) fill(body, h("p", {class: "error"}, e.message));
      if (ctx.alive) timer = setTimeout(load, refreshMs);
      return;
    }
    if (!ctx.alive) return;
    const jobs = res.replays || [];
    if (jobs.length === 0) {
      fill(body, h("p", {id: "no-replays"}, "No replay jobs."));
    } else {
      const allowed = can("replay:write");
      fill(body, h("table", {id: "jobs"},
        h("thead", {}, h("tr", {}, ["job", "state", "destination", "progress", "rate", "time left", "errors", "created", ""].map((c) => h("th", {}, c)))),
        h("tbody", {}, jobs.map((j) => job(j, allowed, load)))));
    }
    if (jobs.some((j) => j.state === "running")) timer = setTimeout(load, refreshMs);
    else timer = setTimeout(load, refreshMs * 5);
  }
  load();
  return () => clearTimeout(timer);
}

function job(j, allowed, reload) {
  const p = j.progress || {};
  const total = p.total >= 0 ? p.total : 0;
  const handled = (p.done || 0) + (p.failed || 0) + (p.skipped || 0);
  let cancel = "";
  if (j.state === "running") {
    cancel = h("button", {type: "button", class: "secondary cancel", disabled: !allowed, title: allowed ? "" : "needs scope replay:write"}, "Cancel");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        await call("DELETE", "/v1/replays/" + encodeURIComponent(j.id));
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        cancel.replaceWith(h("span", {class: "error"}, e.message));
        return;
      }
      reload();
    });
  }
  return h("tr", {dataset: {id: j.id, state: j.state}},
    h("td", {}, j.name || "", h("div", {class: "mono muted"}, j.id)),
    h("td", {class: "state"}, h("span", {class: "badge " + ({done: "ok", failed: "bad", cancelled: "warn"}[j.state] || "")}, j.state), j.error ? h("div", {class: "error"}, j.error) : ""),
    h("td", {class: "mono"}, (j.request && j.request.destination) || ""),
    h("td", {}, p.total === -1 ? "counting…" : [h("progress", {max: Math.max(total, 1), value: Math.min(handled, Math.max(total, 1))}), " ",
      fmtNum(p.done || 0) + " of " + fmtNum(total) + (p.failed ? ", " + fmtNum(p.failed) + " failed" : "") + (p.skipped ? ", " + fmtNum(p.skipped) + " skipped" : "")]),
    h("td", {}, p.rate ? fmtNum(Math.round(p.rate)) + "/s" : ""),
    h("td", {}, j.state === "running" && p.eta_seconds ? Math.ceil(p.eta_seconds) + " s" : ""),
    h("td", {}, j.error_count ? fmtNum(j.error_count) + ": " + (j.errors || []).slice(0, 3).map((e) => (e.id ? e.id + ": " : "") + e.message).join("; ") : ""),
    h("td", {class: "mono"}, fmtTime(j.created)),
    h("td", {}, cancel));
}
