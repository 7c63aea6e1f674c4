// The console's shell: sign-in, the caller's role (GET /api/v1/health says who is calling),
// the hash router, and the fleet, device, release and audit pages. Rollouts live in
// rollouts.js. Every page is drawn from the management API with dom.js (text, never markup).
import * as api from './api.js';
import {el, clear, table, when, ago, barChart, idlink, link} from './dom.js';
import * as rollouts from './rollouts.js';
import {session, canAudit, stopRefresh, live, errorBox} from './session.js';

const $ = (id) => document.getElementById(id);
async function whoAmI() {
	const h = await api.get('/api/v1/health');
	session.name = h.caller;
	session.role = h.role;
	clear($('who')).append(el('span', {class: 'caller'}, h.caller), ' ', el('span', {class: `role role-${h.role}`}, h.role));
	$('nav').hidden = false;
	$('signout').hidden = false;
	$('signin').hidden = true;
	$('nav-audit').hidden = !canAudit();
	document.body.dataset.role = h.role;
}

function showSignIn(message) {
	session.name = session.role = null;
	api.signOut();
	stopRefresh();
	$('nav').hidden = true;
	$('signout').hidden = true;
	clear($('who'));
	clear($('main'));
	$('signin').hidden = false;
	$('signin-error').textContent = message || '';
	delete document.body.dataset.role;
}

async function signInWith(tokenValue) {
	api.signIn(tokenValue);
	try {
		await whoAmI();
		if (!location.hash || location.hash === '#/') location.hash = '#/overview';
		else route();
	} catch (e) {
		showSignIn(e.status === 401 || e.status === 403 ? `Not signed in: ${e.message}` : e.message);
	}
}

// A part of a page that draw(box) fills, drawn now and again, in a fresh box swapped in when
// complete, on each relevant event of the stream (session.js, live). A box left by a page
// change is no longer in the document, and swapping it changes nothing.
async function livePart(main, types, relevant, draw, gapMs = 0) {
	let box = el('div', {});
	main.append(box);
	await draw(box);
	live(types, relevant, async () => {
		const next = el('div', {});
		await draw(next);
		box.replaceWith(next);
		box = next;
	}, gapMs);
}

// ---- overview ----

async function overview(main) {
	main.append(el('h1', {}, 'Fleet overview'));
	await livePart(main, 'rollout.*,deployment.*,device.*', () => true, overviewBody, 5000);
}

async function overviewBody(main) {
	const devices = [];
	let cursor = null, pages = 0;
	do {
		const j = await api.get(`/api/v1/devices${api.query({limit: 1000, cursor})}`);
		devices.push(...api.items(j));
		cursor = j.next_cursor;
	} while (cursor && ++pages < 20);
	const count = (f) => {
		const m = new Map();
		for (const d of devices) m.set(f(d), (m.get(f(d)) || 0) + 1);
		return [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
	};
	const now = Date.now() / 1000;
	const seen = (d) => !d.last_seen ? 'never' : now - d.last_seen < 3600 ? 'last hour'
		: now - d.last_seen < 86400 ? 'last day' : now - d.last_seen < 7 * 86400 ? 'last week' : 'older';
	main.append(el('p', {}, `${devices.length} devices${cursor ? ' (the first 20,000)' : ''}.`));
	main.append(el('div', {class: 'charts'},
		barChart('Devices by version', count((d) => d.version || '(not reported)')),
		barChart('Devices by hardware variant', count((d) => d.hw_variant || '(not reported)')),
		barChart('Devices by state', count((d) => d.status === 'decommissioned' ? 'decommissioned' : d.admission)),
		barChart('Devices by last seen', count(seen))));
	main.append(el('h2', {}, 'Rollouts in progress'));
	const live = api.items(await api.get('/api/v1/rollouts')).filter((r) =>
		['running', 'paused', 'waiting_approval'].includes(r.state));
	if (!live.length) main.append(el('p', {}, 'No rollout is in progress.'));
	for (const r of live) {
		const full = await api.get(`/api/v1/rollouts/${encodeURIComponent(r.id)}`);
		main.append(el('section', {class: 'card rollout-card'},
			el('h3', {}, idlink('rollouts', r.id, full.name), ' ', rollouts.stateBadge(full.state)),
			rollouts.stageBars(full)));
	}
}

// ---- devices ----

const FILTERS = ['hw_variant', 'version', 'tag', 'admission', 'status', 'rollout'];

async function devices(main, params) {
	main.append(el('h1', {}, 'Devices'));
	const form = el('form', {class: 'filters'},
		FILTERS.map((f) => el('label', {}, f.replace('_', ' '), ' ',
			el('input', {name: f, value: params.get(f) || '', size: 12}))),
		el('button', {type: 'submit'}, 'Filter'));
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		const q = {};
		for (const f of FILTERS) q[f] = form.elements[f].value.trim();
		location.hash = `#/devices${api.query(q)}`;
	});
	main.append(form);
	await livePart(main, 'device.*,deployment.*', () => true, (box) => deviceRows(box, params), 1000);
}

async function deviceRows(main, params) {
	const q = {limit: 50, cursor: params.get('cursor')};
	for (const f of FILTERS) q[f] = params.get(f);
	const j = await api.get(`/api/v1/devices${api.query(q)}`);
	const rows = api.items(j).map((d) => [idlink('devices', d.id), d.hw_variant || '-', d.version || '-',
		d.status, d.admission, (d.tags || []).join(', '), ago(d.last_seen)]);
	main.append(table(['Device', 'Variant', 'Version', 'Status', 'Admission', 'Tags', 'Last seen'], rows));
	const nav = el('p', {class: 'pager'});
	if (params.get('cursor')) {
		const first = new URLSearchParams(params);
		first.delete('cursor');
		nav.append(link(`#/devices?${first}`, 'First page'), ' ');
	}
	if (j.next_cursor) {
		const next = new URLSearchParams(params);
		next.set('cursor', j.next_cursor);
		nav.append(link(`#/devices?${next}`, 'Next page'));
	}
	main.append(nav);
}

async function device(main, id) {
	const d = await api.get(`/api/v1/devices/${encodeURIComponent(id)}`);
	main.append(el('h1', {}, 'Device ', el('span', {class: 'mono'}, d.id)));
	main.append(el('dl', {class: 'facts'},
		[['Status', d.status], ['Admission', d.admission], ['Hardware variant', d.hw_variant || '-'],
			['Version', d.version || '-'], ['Security floor', d.security_floor ?? '-'],
			['Root version', d.root_version ?? '-'], ['Tags', (d.tags || []).join(', ') || '-'],
			['Last seen', when(d.last_seen)], ['Registered', when(d.registered_at)],
			['Certificate', d.fingerprint || '-']].map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])));
	main.append(el('h2', {}, 'Deployments'));
	const deps = d.deployments || [];
	if (!deps.length) main.append(el('p', {}, 'None.'));
	const reports = el('div', {id: 'reports'});
	main.append(table(['Deployment', 'Release', 'Status', 'Reason', 'Created', 'Finished', ''],
		deps.map((x) => [el('span', {class: 'mono'}, x.id), el('span', {class: 'mono'}, (x.release_id || '').slice(0, 12)),
			x.status, x.reason || '', when(x.created_at), when(x.finished_at),
			el('button', {type: 'button', onclick: () => showReports(reports, x.id)}, 'Reports')])));
	main.append(reports);
}

async function showReports(box, id) {
	clear(box);
	try {
		const dep = await api.get(`/api/v1/deployments/${encodeURIComponent(id)}`);
		box.append(el('h3', {}, 'Reports of ', el('span', {class: 'mono'}, id)),
			table(['#', 'Status', 'Reason', 'Version', 'Progress', 'Received'],
				(dep.events || []).map((e) => [e.seq, e.status, e.reason || '', e.version || '',
					e.progress ?? '', when(e.received_at)])));
	} catch (e) {
		box.append(errorBox(e));
	}
}

// ---- releases and images ----

async function releases(main) {
	main.append(el('h1', {}, 'Releases'));
	const rel = api.items(await api.get('/api/v1/releases'));
	main.append(table(['Name', 'Version', 'Security version', 'Variants', 'Image', 'Size', 'Registered', 'Id'],
		rel.map((r) => [r.name, r.version, r.security_version, (r.hw_variants || []).join(', '),
			el('span', {class: 'mono'}, (r.image_sha256 || '').slice(0, 12)), r.image_size, when(r.created_at),
			el('span', {class: 'mono'}, r.id)])));
	main.append(el('h2', {}, 'Images'));
	const img = api.items(await api.get('/api/v1/images?limit=200'));
	main.append(table(['SHA-256', 'Size', 'Uploaded', 'Releases'],
		img.map((i) => [el('span', {class: 'mono'}, i.sha256), i.size, when(i.created_at), i.releases ?? ''])));
}

// ---- audit ----

const AUDIT_FILTERS = ['actor', 'action', 'device', 'rollout', 'release'];

async function audit(main, params) {
	main.append(el('h1', {}, 'Audit log'));
	const verify = el('div', {class: 'verify'});
	main.append(el('p', {},
		el('button', {type: 'button', id: 'audit-verify', onclick: async () => {
			clear(verify).append('Verifying...');
			try {
				const v = await api.get('/api/v1/audit/verify');
				clear(verify).append(el('p', {class: v.ok ? 'ok' : 'error', id: 'verify-result'},
					v.ok ? `Chain verified: ${v.entries} entries, ${v.checkpoints} signed checkpoints.`
						: `Chain broken at entry ${v.bad_seq}: ${v.reason}`));
			} catch (e) {
				clear(verify).append(errorBox(e));
			}
		}}, 'Verify the chain'), ' ',
		el('button', {type: 'button', onclick: () => api.download('/api/v1/audit/export', 'audit-export.ndjson')
			.catch((e) => verify.append(errorBox(e)))}, 'Export (download)')));
	main.append(verify);
	const form = el('form', {class: 'filters'},
		AUDIT_FILTERS.map((f) => el('label', {}, f, ' ', el('input', {name: f, value: params.get(f) || '', size: 12}))),
		el('button', {type: 'submit'}, 'Query'));
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		const q = {};
		for (const f of AUDIT_FILTERS) q[f] = form.elements[f].value.trim();
		location.hash = `#/audit${api.query(q)}`;
	});
	main.append(form);
	// The first page grows with each new entry; a later page stays as read.
	if (params.get('cursor')) await auditRows(main, params);
	else await livePart(main, '*', () => true, (box) => auditRows(box, params), 1000);
}

async function auditRows(main, params) {
	const q = {limit: 100, cursor: params.get('cursor')};
	for (const f of AUDIT_FILTERS) q[f] = params.get(f);
	const j = await api.get(`/api/v1/audit${api.query(q)}`);
	main.append(table(['#', 'At', 'Actor', 'Role', 'Action', 'Device', 'Rollout', 'Object', 'Detail'],
		api.items(j).map((a) => [a.seq, when(a.at), a.actor, a.role || '', a.action, a.device_id || '',
			a.rollout_id ? idlink('rollouts', a.rollout_id) : '', a.object || '', a.detail || ''])));
	if (j.next_cursor) {
		const next = new URLSearchParams(params);
		next.set('cursor', j.next_cursor);
		main.append(el('p', {class: 'pager'}, link(`#/audit?${next}`, 'Next page')));
	}
}

// ---- router ----

async function route() {
	if (!session.role) return;
	stopRefresh();
	const main = clear($('main'));
	const [path, qs] = (location.hash.slice(1) || '/overview').split('?');
	const params = new URLSearchParams(qs || '');
	const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
	for (const a of document.querySelectorAll('#nav a'))
		a.classList.toggle('current', a.getAttribute('href') === `#/${parts[0]}`);
	try {
		switch (parts[0]) {
		case 'devices':
			await (parts[1] ? device(main, parts[1]) : devices(main, params));
			break;
		case 'releases':
			await releases(main);
			break;
		case 'rollouts':
			if (parts[1] === 'new') await rollouts.create(main);
			else if (parts[1]) await rollouts.detail(main, parts[1]);
			else await rollouts.list(main);
			break;
		case 'audit':
			await audit(main, params);
			break;
		default:
			await overview(main);
		}
	} catch (e) {
		if (e.status === 401) return showSignIn(`Signed out: ${e.message}`);
		main.append(errorBox(e));
	}
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
	$('token-form').addEventListener('submit', (ev) => {
		ev.preventDefault();
		const t = $('token').value.trim();
		$('token').value = '';
		if (t) signInWith(t);
	});
	$('cert-signin').addEventListener('click', () => signInWith(null));
	$('signout').addEventListener('click', () => {
		location.hash = '';
		showSignIn('Signed out.');
	});
	showSignIn('');
});
