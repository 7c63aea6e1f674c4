// Validates recorded otad answers against docs/openapi.yaml (OpenAPI 3.1): each answer's
// status must be documented for its operation, its content type must be one the status
// declares, and its body must match that schema (JSON Schema 2020-12, Ajv). Prints one line per
// fault and the operations the records exercised; exits 1 on any fault.
//
// usage: node validate.mjs SPEC RECORDS [--require-all | --require-all-except "METHOD PATH,..."]
// With --require-all (or --require-all-except), every operation (every other operation) must
// have been answered at least once with a success and once with an error.
// RECORDS: one JSON object a line, {"method","path","status","content_type","body"}.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [specPath, recPath, ...rest] = process.argv.slice(2);
const spec = YAML.parse(readFileSync(specPath, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addFormat('binary', true);
ajv.addSchema(spec, 'openapi.json', undefined, false);

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const deref = (obj) => {
	while (obj && obj.$ref) {
		const parts = obj.$ref.replace(/^#\//, '').split('/');
		obj = parts.reduce((o, p) => o[p.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
	}
	return obj;
};
const ops = [];
for (const [tmpl, item] of Object.entries(spec.paths)) {
	const re = new RegExp('^' + tmpl.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+') + '$');
	for (const m of ['get', 'head', 'post', 'put', 'delete', 'patch'])
		if (item[m]) ops.push({ key: `${m.toUpperCase()} ${tmpl}`, tmpl, m, re, op: item[m] });
}

let faults = 0;
const seen = new Map(); // op key -> {ok, err}
const fault = (r, why) => {
	faults++;
	console.log(`FAULT ${r.method} ${r.path} -> ${r.status}: ${why}`);
};
const lines = readFileSync(recPath, 'utf8').split('\n').filter((l) => l.trim());
for (const line of lines) {
	const r = JSON.parse(line);
	const path = r.path.split('?')[0];
	const o = ops.find((x) => x.m === r.method.toLowerCase() && x.re.test(path));
	if (!o) {
		if (!ops.some((x) => x.re.test(path)) && r.status === 404) continue; // unknown path
		if (ops.some((x) => x.re.test(path)) && r.status === 405) continue; // wrong method
		fault(r, 'no operation of the spec');
		continue;
	}
	const s = seen.get(o.key) || { ok: 0, err: 0 };
	if (r.status < 400) s.ok++;
	else s.err++;
	seen.set(o.key, s);
	const resp = deref(o.op.responses[String(r.status)] || o.op.responses.default);
	if (!resp) {
		fault(r, `status ${r.status} is not documented`);
		continue;
	}
	const ct = (r.content_type || '').split(';')[0].trim();
	if (!resp.content) {
		if (r.body && r.method !== 'HEAD') fault(r, `a body (${ct}) where none is documented`);
		continue;
	}
	if (r.method === 'HEAD') continue;
	const media = resp.content[ct];
	if (!media) {
		fault(r, `content type "${ct}" is not documented (${Object.keys(resp.content)})`);
		continue;
	}
	// NDJSON: each line against the schema, unless the schema is the text as a whole.
	const ndjson = ct === 'application/x-ndjson' && deref(media.schema).type !== 'string';
	if (ct === 'application/x-ndjson' && !ndjson) {
		for (const l of r.body.split('\n').filter((x) => x.trim()))
			try {
				JSON.parse(l);
			} catch (e) {
				fault(r, `a line is not JSON: ${e.message}`);
			}
		continue;
	}
	if (!media.schema || !(ct === 'application/json' || ct.endsWith('+json') || ndjson)) continue;
	let bodies;
	try {
		bodies = ndjson
			? r.body.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
			: [JSON.parse(r.body)];
	} catch (e) {
		fault(r, `the body is not JSON: ${e.message}`);
		continue;
	}
	const where = o.op.responses[String(r.status)] ? String(r.status) : 'default';
	let ptr = `openapi.json#/paths/${esc(o.tmpl)}/${o.m}/responses/${where}`;
	const direct = o.op.responses[where];
	if (direct.$ref) ptr = 'openapi.json' + direct.$ref;
	const validate = ajv.getSchema(`${ptr}/content/${esc(ct)}/schema`);
	if (!validate) {
		fault(r, 'the schema cannot be compiled');
		continue;
	}
	for (const body of bodies)
		if (!validate(body))
			fault(r, `body: ${ajv.errorsText(validate.errors)} in ${r.body.slice(0, 300)}`);
}
const except = rest[0] === '--require-all-except' ? rest[1].split(',') : [];
const req =
	rest[0] === '--require-all' || rest[0] === '--require-all-except'
		? ops.map((o) => o.key).filter((k) => !except.includes(k))
		: [];
for (const k of req) {
	const s = seen.get(k);
	if (!s || !s.ok || !s.err) {
		faults++;
		console.log(`FAULT ${k}: not exercised with a success and an error (${JSON.stringify(s || {})})`);
	}
}
for (const o of ops) {
	const s = seen.get(o.key);
	if (!s || !s.ok || !s.err) console.log(`partial: ${o.key} ${JSON.stringify(s || {})}`);
}
const both = ops.filter((o) => seen.get(o.key)?.ok && seen.get(o.key)?.err).length;
console.log(`contract: ${lines.length} answers, ${seen.size}/${ops.length} operations exercised, ` +
	`${both} with a success and an error, ${faults} faults`);
process.exit(faults ? 1 : 0);
