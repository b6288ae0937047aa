// app.js: the explorer's router. Each section renders into <main> and
// returns a function that stops its timers when another section opens.
import {initAuth, token, scopes, authEnabled, newView} from "./api.js";
import {fill, h} from "./dom.js";
import {overview} from "./overview.js";
import {search} from "./search.js";
import {detail} from "./detail.js";
import {deadLetters} from "./deadletters.js";
import {replays} from "./replays.js";

const main = document.getElementById("main");
let stop = () => {};

function route() {
  const path = location.pathname;
  if (path === "/ui/" || path === "/ui") return ["overview", overview];
  if (path === "/ui/events") return ["events", search];
  if (path.startsWith("/ui/events/")) return ["events", detail];
  if (path === "/ui/deadletters") return ["deadletters", deadLetters];
  if (path === "/ui/replays") return ["replays", replays];
  return ["", (el) => { fill(el, h("h1", {}, "No such page"), h("p", {}, "The explorer starts at ", h("a", {href: "/ui/"}, "/ui/"), ".")); }];
}

function render() {
  stop();
  stop = () => {};
  newView();
  const [name, view] = route();
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === name);
  fill(main);
  const ctx = {alive: true};
  const s = view(main, new URLSearchParams(location.search), ctx);
  stop = () => {
    ctx.alive = false;
    if (typeof s === "function") s();
  };
}

// navigate shows path without reloading the page.
export function navigate(path) {
  history.pushState(null, "", path);
  render();
}
window.addEventListener("auditbus:navigate", (ev) => navigate(ev.detail));

function showWho() {
  const who = document.getElementById("who");
  const sc = scopes();
  who.textContent = token() ? "token scopes: " + (sc.length ? sc.join(" ") : "none") : "";
  document.getElementById("signout").hidden = !authEnabled() || !token();
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui/") || url.pathname.startsWith("/ui/assets/")) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);
initAuth(showWho, render);
showWho();
render();
