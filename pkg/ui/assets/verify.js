// verify.js: the verification badge of a version's trail. Each ledger
// entry's leaf (the encoding of sinks/ledgertree.AppendLeaf) is hashed
// here and checked with its inclusion proof (GET
// /v1/ledger/proof/inclusion) against the root of the log's latest
// checkpoint (GET /v1/ledger/checkpoint), as RFC 6962 says. The
// checkpoint's signature is not checked here: auditbus verify does that
// with the public key.
import {call, ApiError} from "./api.js";
import {h} from "./dom.js";

// maxEntries bounds the proofs one badge asks for.
const maxEntries = 50;

export function badge(item) {
  const el = h("p", {class: "verify", id: "verify"}, h("span", {class: "badge warn"}, "checking…"));
  const trail = (item.trail || []).filter((e) => e.log && e.seq);
  const show = (ok, why) => el.replaceChildren(
    h("span", {class: "badge " + (ok ? "ok" : "warn"), dataset: {verified: String(ok)}}, ok ? "verified" : "not verified"), " " + why);
  if (trail.length === 0) {
    show(false, "the trail has no ledger entries");
    return el;
  }
  if (!globalThis.crypto || !crypto.subtle) {
    show(false, "this browser computes no SHA-256 here: open the page over HTTPS or on localhost");
    return el;
  }
  verify(item, trail.slice(0, maxEntries)).then(([ok, why]) => show(ok, why), (e) => show(false, e.message || String(e)));
  return el;
}

// verify checks every entry of trail; it answers [verified, why].
async function verify(item, trail) {
  const checkpoints = new Map();
  for (const e of trail) {
    if (!checkpoints.has(e.log)) {
      let note;
      try {
        note = await call("GET", "/v1/ledger/checkpoint?log=" + encodeURIComponent(e.log), undefined, "text");
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.status === 404 && /no endpoint|keeps no Merkle tree/.test(err.message)) return [false, "this daemon serves no proofs (" + err.message + ")"];
        return [false, "no checkpoint of log " + e.log + ": " + err.message];
      }
      checkpoints.set(e.log, parseCheckpoint(note));
    }
  }
  const digest = hexBytes((item.digest || "").replace(/^sha256:/, ""));
  for (const e of trail) {
    const cp = checkpoints.get(e.log);
    if (!cp) return [false, "the checkpoint of log " + e.log + " is not a checkpoint note"];
    if (e.seq > cp.size) return [false, "entry " + e.log + " #" + e.seq + " is newer than the latest checkpoint (size " + cp.size + "); reload in a moment"];
    const proof = await call("GET", "/v1/ledger/proof/inclusion?" + new URLSearchParams({log: e.log, seq: String(e.seq), size: String(cp.size)}));
    const leaf = await leafHash(e, item.event, digest);
    const root = await rootFromInclusion(e.seq - 1, cp.size, leaf, (proof.hashes || []).map(b64Bytes));
    if (!equal(root, cp.root)) return [false, "entry " + e.log + " #" + e.seq + " does not match the checkpoint of size " + cp.size + ": the ledger or this answer was changed"];
  }
  const logs = [...checkpoints].map(([log, cp]) => log + " at size " + cp.size).join(", ");
  return [true, "all " + trail.length + " entries are in the latest checkpoint of " + logs + " (its signature is checked by auditbus verify, not here)"];
}

// parseCheckpoint reads the origin, size and root of a checkpoint note.
function parseCheckpoint(note) {
  const lines = String(note).split("\n");
  const size = Number(lines[1]);
  if (lines.length < 3 || !Number.isSafeInteger(size)) return null;
  return {origin: lines[0], size, root: b64Bytes(lines[2])};
}

// leafHash is SHA-256(0x00 || leaf) of the entry's leaf encoding.
async function leafHash(e, ev, digest) {
  const w = new LeafWriter();
  // auditbus-leaf-v2 is v1 with the signature result appended; entries
  // without one keep v1.
  w.raw(new TextEncoder().encode(e.signature ? "auditbus-leaf-v2" : "auditbus-leaf-v1"));
  w.field(e.log);
  w.uvarint(BigInt(e.seq));
  w.varint(unixNanos(e.time));
  w.field(e.kind);
  w.field(ev.source);
  w.field(ev.id);
  w.raw(digest);
  w.field(e.transport);
  w.field(e.topic);
  w.varint(BigInt(e.partition || 0));
  w.varint(BigInt(e.offset || 0));
  w.field(e.request);
  w.field(e.principal);
  w.field(e.route);
  w.field(e.destination);
  w.varint(BigInt(e.attempts || 0));
  w.field(e.error);
  w.field(e.replay);
  if (e.signature) w.field(e.signature);
  return sha256(concat([new Uint8Array([0]), w.bytes()]));
}

// rootFromInclusion is transparency-dev/merkle's RootFromInclusionProof.
async function rootFromInclusion(index, size, leaf, proof) {
  if (index >= size) throw new Error("index " + index + " beyond size " + size);
  const big = BigInt(index), last = BigInt(size - 1);
  const inner = (big ^ last).toString(2).replace(/^0+/, "").length;
  const border = (big >> BigInt(inner)).toString(2).replace(/0/g, "").length;
  if (proof.length !== inner + border) throw new Error("the proof has " + proof.length + " hashes, want " + (inner + border));
  let seed = leaf;
  for (let i = 0; i < inner; i++) {
    seed = ((big >> BigInt(i)) & 1n) === 0n ? await children(seed, proof[i]) : await children(proof[i], seed);
  }
  for (let i = inner; i < proof.length; i++) seed = await children(proof[i], seed);
  return seed;
}

function children(l, r) {
  return sha256(concat([new Uint8Array([1]), l, r]));
}

async function sha256(b) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b));
}

// unixNanos reads an RFC 3339 time with up to nine fraction digits.
function unixNanos(s) {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s || "");
  if (!m) throw new Error("entry time " + s + " is not RFC 3339");
  const ms = Date.parse(m[1] + m[3]);
  return BigInt(ms) * 1000000n + BigInt((m[2] || "").padEnd(9, "0"));
}

class LeafWriter {
  constructor() { this.parts = []; }
  raw(b) { this.parts.push(b); }
  uvarint(v) {
    const out = [];
    while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
    out.push(Number(v));
    this.parts.push(new Uint8Array(out));
  }
  varint(v) { this.uvarint(v >= 0n ? v << 1n : ((-v) << 1n) - 1n); }
  field(s) {
    const b = new TextEncoder().encode(s || "");
    this.uvarint(BigInt(b.length));
    this.parts.push(b);
  }
  bytes() { return concat(this.parts); }
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function hexBytes(s) {
  return new Uint8Array((s.match(/../g) || []).map((x) => parseInt(x, 16)));
}

function b64Bytes(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function equal(a, b) {
  return !!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]);
}
