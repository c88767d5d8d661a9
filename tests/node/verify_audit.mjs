// An auditor's own verifier of a Potvrda audit export, written from
// docs/PROTOCOL.md ("The tamper-evident audit trail") alone, with Node's
// crypto and the jose library: no Potvrda code. Reads the export (JSON Lines)
// on stdin and the audit JWKS from AUDIT_JWKS (a JSON string); prints one
// JSON line: {"ok": true, "events", "checkpoints", "heads"} or
// {"ok": false, "id", "reason"}.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { createLocalJWKSet, jwtVerify } from 'jose';

// RFC 8785: JSON.stringify's forms, members sorted by UTF-16 code units.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const zero = '0'.repeat(64);
const jwks = createLocalJWKSet(JSON.parse(process.env.AUDIT_JWKS));
const heads = new Map(); // chain name -> {n, hash}
const seen = new Map(); // `${chain} ${n}` -> hash
let events = 0;
let checkpoints = 0;

function fail(id, reason) {
  console.log(JSON.stringify({ ok: false, id, reason }));
  process.exit(1);
}

function follow(name, link, event, body) {
  const head = heads.get(name);
  if (head && (link.n !== head.n + 1 || link.prev !== head.hash)) fail(event.id, `${name}: not linked to the previous event`);
  if (!head && link.n === 1 && link.prev !== zero) fail(event.id, `${name}: first prev is not zero`);
  const hash = createHash('sha256').update(Buffer.from(link.prev, 'hex')).update(body, 'utf8').digest('hex');
  if (hash !== link.hash) fail(event.id, `${name}: hash does not match the event`);
  heads.set(name, { n: link.n, hash });
  seen.set(`${name} ${link.n}`, hash);
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const event = JSON.parse(line);
  events += 1;
  const { id, chain, ...rest } = event;
  if (!chain) {
    if (heads.size) fail(id, 'no chain links after the chain began');
    continue;
  }
  const body = canonical(rest);
  follow('national', chain.national, event, body);
  if (event.municipality) follow(`municipality:${event.municipality}`, chain.municipal, event, body);
  if (event.kind === 'audit_checkpoint') {
    let payload;
    try {
      ({ payload } = await jwtVerify(event.detail.jws, jwks, {
        algorithms: ['ES256'],
        typ: 'potvrda-audit-checkpoint+jwt',
      }));
    } catch (e) {
      fail(id, `checkpoint signature: ${e.code || e.message}`);
    }
    const signed = seen.get(`${payload.chain} ${payload.n}`);
    if (signed === undefined) fail(id, 'checkpoint signs a link not in the export');
    if (signed !== payload.hash) fail(id, 'checkpoint disagrees with the chain');
    checkpoints += 1;
  }
}
console.log(JSON.stringify({ ok: true, events, checkpoints, heads: Object.fromEntries(heads) }));
