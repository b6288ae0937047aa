// verify.js: the verification badge of a trail. The entries are checked
// against the log's latest signed checkpoint when the daemon serves
// proofs (GET /v1/ledger/checkpoint); otherwise the badge says why they
// are not verified.
import {call, ApiError} from "./api.js";
import {h} from "./dom.js";

export function badge(trail) {
  const el = h("p", {class: "verify", id: "verify"}, h("span", {class: "badge warn"}, "checking…"));
  const logs = [...new Set(trail.map((e) => e.log).filter(Boolean))];
  if (logs.length === 0) {
    el.replaceChildren(h("span", {class: "badge warn"}, "not verified"), " the trail has no ledger entries");
    return el;
  }
  check(logs[0]).then((why) => {
    el.replaceChildren(h("span", {class: "badge warn", dataset: {verified: "false"}}, "not verified"), " " + why);
  });
  return el;
}

// check asks for the log's checkpoint and says why the entries cannot be
// verified in this browser.
async function check(log) {
  try {
    await call("GET", "/v1/ledger/checkpoint?log=" + encodeURIComponent(log));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && e.code === "not_found" && /no endpoint/.test(e.message)) {
      return "this daemon serves no proofs (GET /v1/ledger/checkpoint answered 404)";
    }
    return "the checkpoint of log " + log + " could not be read: " + (e.message || e);
  }
  return "this page cannot check the proofs of log " + log + " yet; use auditbus verify event";
}
