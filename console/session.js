// Who is signed in (from GET /api/v1/health), what that role may do, the page's live refresh
// timer and the one way errors are shown. Shared by the pages; depends on dom.js only.
import {el} from './dom.js';

export const session = {name: null, role: null};
let refreshTimer = null;

// The console shows actions by role; the API enforces the same rules whatever is shown.
export function canWrite() {
	return session.role === 'admin' || session.role === 'operator';
}
export function canAudit() {
	return session.role === 'admin' || session.role === 'auditor';
}

// Live refresh of the page shown: fn every ms, stopped when the page changes.
export function every(ms, fn) {
	stopRefresh();
	refreshTimer = setInterval(fn, ms);
}
export function stopRefresh() {
	if (refreshTimer) clearInterval(refreshTimer);
	refreshTimer = null;
}

export function errorBox(e) {
	const p = e && e.problem ? e.problem : {};
	return el('p', {class: 'error', role: 'alert'},
		p.title ? `${p.title}: ` : '', e && e.message ? e.message : String(e));
}
