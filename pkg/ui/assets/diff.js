// diff.js: a line difference of two texts, for versions in conflict.
import {h} from "./dom.js";

const maxCells = 4e6;

// diffLines shows b against a, line by line: removed lines marked "-",
// added "+", from the longest common subsequence of lines.
export function diffLines(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  if (x.length * y.length > maxCells) {
    return h("p", {class: "muted"}, "The data differ; they are too long to compare line by line here.");
  }
  const n = x.length, m = y.length;
  const L = Array.from({length: n + 1}, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
    L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  }
  const out = h("pre", {class: "diff"});
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.appendChild(h("span", {}, "  " + x[i] + "\n"));
      i++; j++;
    } else if (i < n && (j === m || L[i + 1][j] >= L[i][j + 1])) {
      out.appendChild(h("span", {class: "del"}, "- " + x[i++]));
    } else {
      out.appendChild(h("span", {class: "add"}, "+ " + y[j++]));
    }
  }
  return out;
}
