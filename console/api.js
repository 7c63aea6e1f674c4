// The management API, and nothing else: every call goes to this origin's /api/v1 with the
// signed-in caller's credentials. An API token lives in this module's memory only (never a
// cookie, never Web Storage): reloading or closing the tab signs out. With a certificate, the
// browser presents it in the TLS handshake and no header is added.
let token = null;

export class ApiError extends Error {
	constructor(status, problem) {
		super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
		this.status = status;
		this.problem = problem || {};
	}
}

export function signIn(t) {
	token = t || null;
}

export function signOut() {
	token = null;
}

export async function call(method, path, body) {
	const headers = {Accept: 'application/json'};
	if (token) headers.Authorization = `Bearer ${token}`;
	const init = {method, headers, cache: 'no-store', credentials: 'same-origin'};
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body);
	}
	const r = await fetch(path, init);
	const type = r.headers.get('Content-Type') || '';
	if (!r.ok) {
		let p = null;
		if (type.includes('json')) p = await r.json().catch(() => null);
		throw new ApiError(r.status, p);
	}
	return type.includes('json') ? r.json() : r.text();
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);

// The rows of a list answer ({"items": [...], "next_cursor": ...}, or an older
// {"<collection>": [...]}).
export function items(j) {
	if (Array.isArray(j.items)) return j.items;
	for (const k of ['rollouts', 'releases', 'devices', 'images']) if (Array.isArray(j[k])) return j[k];
	return [];
}

export function query(params) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
	const s = q.toString();
	return s ? `?${s}` : '';
}

// The body of an export as a file download, through a blob URL (no token in any URL).
export async function download(path, name) {
	const headers = {};
	if (token) headers.Authorization = `Bearer ${token}`;
	const r = await fetch(path, {headers, cache: 'no-store'});
	if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
	const url = URL.createObjectURL(await r.blob());
	const a = document.createElement('a');
	a.href = url;
	a.download = name;
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// The live event stream (GET /api/v1/events, Server-Sent Events) read with fetch, since an
// EventSource cannot send the Authorization header. Calls onOpen() once the stream is accepted,
// then onEvent({id, type, data}) for each event (data parsed from its JSON); resolves when the
// server ends the stream, rejects with an ApiError when it is refused (403, 503
// too-many-streams ...) or with the fetch's error when the connection fails or `signal` aborts
// it. Aborting closes the connection, which frees the browser's connection to this origin.
export async function stream(path, {onOpen, onEvent, signal}) {
	const headers = {Accept: 'text/event-stream'};
	if (token) headers.Authorization = `Bearer ${token}`;
	const r = await fetch(path, {headers, cache: 'no-store', credentials: 'same-origin', signal});
	if (!r.ok || !r.body) {
		const p = (r.headers.get('Content-Type') || '').includes('json') ? await r.json().catch(() => null) : null;
		throw new ApiError(r.status, p);
	}
	onOpen();
	const reader = r.body.getReader();
	const text = new TextDecoder();
	let buf = '', id = null, type = 'message', data = [];
	for (;;) {
		const {value, done} = await reader.read();
		if (done) return;
		buf += text.decode(value, {stream: true});
		let nl;
		while ((nl = buf.search(/\r?\n|\r/)) >= 0) {
			const line = buf.slice(0, nl);
			buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
			if (line === '') {
				if (data.length) {
					let d = null;
					try {
						d = JSON.parse(data.join('\n'));
					} catch {
						d = null;
					}
					onEvent({id, type, data: d || {}});
				}
				type = 'message';
				data = [];
				continue;
			}
			if (line.startsWith(':')) continue; // a comment: the greeting, heartbeats
			const colon = line.indexOf(':');
			const field = colon < 0 ? line : line.slice(0, colon);
			const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
			if (field === 'data') data.push(val);
			else if (field === 'event') type = val;
			else if (field === 'id') id = val;
		}
	}
}
