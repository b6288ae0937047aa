// api.js: the daemon's HTTP API as the page uses it: the bearer token kept
// for this browser session, errors in the API's own shape, the banner for
// an unreachable daemon or a server fault.

const tokenKey = "auditbus.token";
// viewCalls aborts the calls of the section on screen when another opens,
// so the daemon stops working on answers nobody waits for.
let viewCalls = new AbortController();
let authOn = false;
let promptWaiters = [];

// ApiError is an answer other than 2xx: status, code and message as the
// API's error body says them.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(tokenKey) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(tokenKey, t);
  else sessionStorage.removeItem(tokenKey);
}

// scopes lists the token's scopes, read from its claims (scope or scp);
// the daemon checks them, the page only hides what would be refused.
export function scopes() {
  const t = token();
  if (!t) return null;
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4)));
    if (typeof claims.scope === "string") return claims.scope.split(" ").filter(Boolean);
    if (Array.isArray(claims.scp)) return claims.scp.map(String);
    return [];
  } catch {
    return [];
  }
}

// can says whether the page should offer an action needing every scope
// given: always without auth, else when the token has them.
export function can(...need) {
  if (!authOn && !token()) return true;
  const have = scopes() || [];
  return need.every((s) => have.includes(s));
}

export function authEnabled() {
  return authOn || !!token();
}

// newView aborts the calls still in flight for the previous section.
export function newView() {
  viewCalls.abort();
  viewCalls = new AbortController();
}

// banner shows a message above the page, or hides it with none.
export function banner(msg) {
  const b = document.getElementById("banner");
  b.textContent = msg || "";
  b.hidden = !msg;
}

// call sends a request to the API and returns the parsed JSON answer (the
// text with as "text"). A 401
// shows the token prompt and retries once a token is given; a network
// failure or a 5xx shows the banner and throws.
export async function call(method, path, body, as) {
  for (;;) {
    const headers = {Accept: as === "text" ? "text/plain" : "application/json"};
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    const signal = viewCalls.signal;
    try {
      resp = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", signal});
    } catch (e) {
      if (signal.aborted) throw new ApiError(0, "aborted", "another page was opened");
      banner("The daemon did not answer " + method + " " + path.split("?")[0] + ": " + e.message + ". The page will try again.");
      throw new ApiError(0, "unreachable", "the daemon did not answer");
    }
    let data = null;
    const text = await resp.text();
    if (resp.ok && as === "text") {
      banner("");
      return text;
    }
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (resp.ok) {
      banner("");
      return data;
    }
    const err = (data && data.error) || {};
    const e = new ApiError(resp.status, err.code || "http_" + resp.status, err.message || text || resp.statusText);
    if (resp.status === 401) {
      authOn = true;
      await askToken(t ? "The daemon refused the token: " + e.message : "");
      continue;
    }
    if (resp.status >= 500) {
      banner("The daemon answered " + resp.status + " to " + method + " " + path.split("?")[0] + ": " + e.message);
    }
    throw e;
  }
}

// askToken shows the prompt and resolves once a token is entered.
export function askToken(why) {
  setToken("");
  const box = document.getElementById("auth");
  const err = document.getElementById("auth-error");
  err.textContent = why || "";
  err.hidden = !why;
  box.hidden = false;
  document.getElementById("auth-token").focus();
  return new Promise((resolve) => promptWaiters.push(resolve));
}

// initAuth wires the prompt: onToken runs when a token is given or
// forgotten, onForget after it was forgotten.
export function initAuth(onToken, onForget) {
  const form = document.getElementById("auth-form");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = document.getElementById("auth-token");
    setToken(input.value.trim());
    input.value = "";
    document.getElementById("auth").hidden = true;
    const waiters = promptWaiters;
    promptWaiters = [];
    waiters.forEach((w) => w());
    onToken();
  });
  document.getElementById("signout").addEventListener("click", () => {
    setToken("");
    onToken();
    onForget();
  });
}
