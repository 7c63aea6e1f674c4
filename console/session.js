// Who is signed in (from GET /api/v1/health), what that role may do, the page's live refresh
// (the event stream, else a polling timer) and the one way errors are shown. Shared by the
// pages; depends on dom.js and api.js (the stream) only.
import {el} from './dom.js';
import * as api from './api.js';

export const session = {name: null, role: null};
let refreshTimer = null;
let streamAbort = null;

// How often a page refreshes: POLL_MS without the event stream, STREAM_POLL_MS with it (the
// stream announces every audited change; the slow poll catches what is not audited, such as a
// device's progress reports between its deployment's start and outcome). DEBOUNCE_MS gathers a
// burst of events into one refresh.
export const POLL_MS = 3000;
export const STREAM_POLL_MS = 30000;
const DEBOUNCE_MS = 250;

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
	if (streamAbort) streamAbort.abort();
	streamAbort = null;
	delete document.body.dataset.live;
}

// Live refresh from the event stream: fn runs (debounced, never two at once) after each event
// of `types` (the stream's ?types=) for which relevant(event) holds, once when the stream
// opens (what happened while it connected), and every STREAM_POLL_MS. Until the stream is
// open, and for good when it is refused (403, 503 too-many-streams) or fails, fn runs every
// POLL_MS instead. stopRefresh (a page change, signing out) closes the stream.
// document.body.dataset.live says which: "connecting", "stream" or "poll". gapMs spaces the
// redraws of a costly page (the overview reads every device) under a steady flow of events.
export function live(types, relevant, fn, gapMs = 0) {
	stopRefresh();
	const ctl = new AbortController();
	streamAbort = ctl;
	let pending = null, busy = false, again = false, last = 0;
	const run = async () => {
		if (ctl.signal.aborted) return;
		if (busy) {
			again = true;
			return;
		}
		busy = true;
		last = Date.now();
		try {
			await fn();
		} catch {
			// fn shows its own errors; the next event or tick tries again
		} finally {
			busy = false;
			if (again) {
				again = false;
				soon();
			}
		}
	};
	const soon = () => {
		if (!pending) pending = setTimeout(() => {
			pending = null;
			run();
		}, Math.max(DEBOUNCE_MS, last + gapMs - Date.now()));
	};
	const mode = (m, ms) => {
		if (ctl.signal.aborted) return;
		document.body.dataset.live = m;
		if (refreshTimer) clearInterval(refreshTimer);
		refreshTimer = setInterval(run, ms);
	};
	mode('connecting', POLL_MS);
	api.stream(`/api/v1/events?types=${encodeURIComponent(types)}`, {
		signal: ctl.signal,
		onOpen: () => {
			mode('stream', STREAM_POLL_MS);
			soon();
		},
		onEvent: (e) => {
			if (relevant(e.data)) soon();
		},
	}).then(() => mode('poll', POLL_MS), () => mode('poll', POLL_MS));
}

export function errorBox(e) {
	const p = e && e.problem ? e.problem : {};
	return el('p', {class: 'error', role: 'alert'},
		p.title ? `${p.title}: ` : '', e && e.message ? e.message : String(e));
}
