// Rollout pages: the list, a rollout's detail (per-stage progress, the halt reason, the
// timeline, live refresh, the actions the caller's role may take in the rollout's state), the
// create form that shows the plan before anything starts, and the plan itself.
import * as api from './api.js';
import {el, clear, table, when, duration, stackBar, idlink, link} from './dom.js';
import {canWrite, canAudit, live as liveRefresh, errorBox} from './session.js';

const UPDATING = ['pending', 'downloading', 'installing', 'trial'];

export function stateBadge(state) {
	return el('span', {class: `badge state-${state}`}, state.replace('_', ' '));
}

function sum(o, keys) {
	return keys.reduce((n, k) => n + (o[k] || 0), 0);
}

// Per-stage progress: joined / succeeded / failed / updating (and skipped) with a bar each.
export function stageBars(r) {
	const stages = (r.progress && r.progress.stages) || [];
	return table(['Stage', 'Share', 'Joined', 'Succeeded', 'Failed', 'Updating', 'Skipped', ''],
		stages.map((s) => {
			const d = s.devices, joined = Object.values(d).reduce((a, b) => a + b, 0);
			const failed = sum(d, ['failed', 'rolled_back']), updating = sum(d, UPDATING);
			const cur = r.stage === s.stage && r.state !== 'draft';
			return [el('span', {class: cur ? 'current-stage' : ''}, `${s.stage}${cur ? ' (current)' : ''}`),
				`${s.percent} %`, joined, d.succeeded || 0, failed, updating, d.skipped || 0,
				stackBar([['ok', d.succeeded || 0, 'succeeded'], ['bad', failed, 'failed'],
					['busy', updating, 'updating'], ['skip', d.skipped || 0, 'skipped']], joined)];
		}));
}

export async function list(main) {
	main.append(el('h1', {}, 'Rollouts'));
	if (canWrite()) main.append(el('p', {}, el('a', {href: '#/rollouts/new', class: 'button', id: 'new-rollout'}, 'New rollout')));
	let box = el('div', {});
	main.append(box);
	await listRows(box);
	liveRefresh('rollout.*', () => true, async () => {
		const next = el('div', {});
		await listRows(next);
		box.replaceWith(next);
		box = next;
	});
}

async function listRows(box) {
	const rows = api.items(await api.get('/api/v1/rollouts')).reverse();
	box.append(table(['Name', 'State', 'Stage', 'Release', 'Created'],
		rows.map((r) => [idlink('rollouts', r.id, r.name), stateBadge(r.state), `${r.stage} of ${r.stages ?? '?'}`,
			el('span', {class: 'mono'}, (r.release_id || '').slice(0, 12)), when(r.created_at)])));
}

// ---- the plan ----

function pairs(o) {
	return Object.entries(o || {}).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join(', ') || '-';
}

export function renderPlan(p) {
	const d = p.devices;
	const box = el('section', {class: 'plan card', id: 'plan'});
	box.append(el('h2', {}, p.exact ? 'Plan (exact: this draft\'s membership)' : 'Plan (estimate: stages drawn as creating would)'));
	box.append(el('p', {class: 'plan-summary'},
		`${d.considered} devices considered: ${d.covered} would be updated, ${d.skipped} skipped, `,
		`${d.not_targeted} not targeted. Release ${p.release.name} ${p.release.version} `,
		`(security version ${p.release.security_version}).`));
	for (const w of p.warnings || []) box.append(el('p', {class: 'warning'}, w));
	box.append(table(['Stage', 'Share', 'Devices', 'Cumulative', 'By variant', 'By version', 'By tag', 'Estimate'],
		p.stages.map((s) => [s.stage, `${s.percent} %`, s.devices, s.cumulative, pairs(s.by_hw_variant),
			pairs(s.by_version), pairs(s.by_tag),
			`${duration(s.estimate.seconds)} (${s.estimate.waves} × ${s.estimate.poll_interval_seconds} s polls, ` +
			`${s.estimate.concurrency} at once, soak ${s.estimate.soak_seconds} s)` +
			(s.estimate.waits_for_approval ? ', then waits for approval' : '')])));
	const reasons = Object.entries(p.skipped.by_reason).filter(([, n]) => n > 0);
	box.append(el('h3', {}, 'Skipped'));
	box.append(reasons.length ? table(['Reason', 'Devices'], reasons.map(([k, n]) => [k.replaceAll('_', ' '), n]))
		: el('p', {}, 'No targeted device would be skipped.'));
	if (p.skipped.devices.length)
		box.append(el('details', {}, el('summary', {}, `The skipped devices${p.skipped.truncated ? ' (the first 100)' : ''}`),
			table(['Device', 'Reason', 'Detail'], p.skipped.devices.map((s) => [idlink('devices', s.device_id),
				s.reason.replaceAll('_', ' '), s.detail]))));
	box.append(el('h3', {}, 'Maintenance windows'));
	if (p.window.always_open) box.append(el('p', {}, 'No window: devices install whenever offered.'));
	else box.append(table([`Opens (${p.window.time_zone}, shown in UTC)`, 'Closes', ''],
		p.window.openings.map((w) => [w.opens, w.closes, w.open_now ? 'open now' : ''])));
	box.append(el('p', {class: 'note'}, 'Estimates: max(ceil(devices / concurrency) × poll interval, soak) per stage; ' +
		'download, install and trial time and waits for windows or approvals are not included.'));
	return box;
}

// ---- detail ----

const ACTIONS = {
	draft: ['start', 'abort'],
	running: ['pause', 'abort', 'rollback'],
	waiting_approval: ['approve', 'pause', 'abort', 'rollback'],
	paused: ['resume', 'abort', 'rollback'],
	completed: ['rollback'],
	aborted: ['rollback'],
};

export async function detail(main, id) {
	const path = `/api/v1/rollouts/${encodeURIComponent(id)}`;
	const head = el('div', {}), live = el('div', {id: 'live'}), actions = el('div', {class: 'actions', id: 'actions'});
	const planBox = el('div', {}), timeline = el('div', {}), msg = el('div', {});
	const reason = el('input', {id: 'action-reason', size: 40, maxlength: 160, placeholder: 'reason (pause, abort)'});
	let lastState = null;
	main.append(head, msg, actions, live, planBox, timeline);

	const act = async (a, body) => {
		clear(msg);
		try {
			await api.post(`${path}/${a}`, body);
			reason.value = '';
			await draw(true);
		} catch (e) {
			msg.append(errorBox(e));
		}
	};
	const rollbackForm = async () => {
		const rel = api.items(await api.get('/api/v1/releases'));
		const sel = el('select', {id: 'rollback-release'}, rel.map((r) => el('option', {value: r.id}, `${r.name} ${r.version}`)));
		const which = el('select', {id: 'rollback-devices'}, el('option', {value: 'failed'}, 'failed devices'), el('option', {value: 'all'}, 'all updated devices'));
		return el('span', {class: 'rollback'}, 'Roll back ', which, ' to ', sel, ' ',
			el('button', {type: 'button', class: 'danger', 'data-action': 'rollback',
				onclick: () => act('rollback', {release_id: sel.value, devices: which.value})}, 'Roll back'));
	};

	async function draw(force) {
		const r = await api.get(path);
		clear(head).append(el('h1', {}, el('span', {id: 'rollout-name'}, r.name), ' ', stateBadge(r.state)),
			el('p', {}, `Stage ${r.stage} of ${r.definition.stages.length} · release `,
				el('span', {class: 'mono'}, r.definition.release_id.slice(0, 12)), ` · created ${when(r.created_at)}`,
				r.time_in_stage_seconds !== undefined ? ` · ${duration(r.time_in_stage_seconds)} in this stage` : ''));
		if (r.reason) head.append(el('p', {class: r.state === 'paused' ? 'halt' : 'reason', id: 'halt-reason'},
			r.state === 'paused' ? 'Halted: ' : '', r.reason));
		clear(live).append(el('h2', {}, 'Progress'), stageBars(r));
		const reasons = (r.progress && r.progress.failure_reasons) || [];
		if (reasons.length) live.append(el('h3', {}, 'Failure reasons'),
			table(['Reason', 'Devices'], reasons.map((x) => [x.reason, x.devices])));
		live.append(el('p', {class: 'note'}, `Updating now: ${r.progress ? r.progress.updating : 0}. Refreshed ${when(Date.now() / 1000)}.`));
		if (force || r.state !== lastState) {
			lastState = r.state;
			clear(actions);
			if (canWrite()) {
				const allowed = ACTIONS[r.state] || [];
				for (const a of allowed.filter((x) => x !== 'rollback'))
					actions.append(el('button', {type: 'button', 'data-action': a, class: a === 'abort' ? 'danger' : '',
						onclick: () => act(a, reason.value.trim() ? {reason: reason.value.trim()} : {})},
					a[0].toUpperCase() + a.slice(1)), ' ');
				if (allowed.some((x) => x === 'pause' || x === 'abort')) actions.append(reason);
				if (allowed.includes('rollback')) actions.append(el('div', {}, await rollbackForm()));
			}
			clear(planBox);
			if (r.state === 'draft') {
				try {
					planBox.append(renderPlan(await api.get(`${path}/plan`)));
				} catch (e) {
					planBox.append(errorBox(e));
				}
			}
		}
		clear(timeline).append(el('h2', {}, 'Timeline'));
		if (canAudit()) {
			const j = await api.get(`/api/v1/audit${api.query({rollout: r.id, limit: 200})}`);
			timeline.append(table(['At', 'Who', 'What', 'Detail'], api.items(j).map((a) =>
				[when(a.at), a.actor, a.action, a.detail || ''])));
		} else {
			timeline.append(table(['At', 'What'], [[when(r.created_at), 'created'],
				[when(r.stage_started_at), `stage ${r.stage} started`], [when(r.updated_at), `last change: ${r.state}`]]));
		}
	}
	await draw(true);
	// Refreshed on each event of this rollout (its state, stages, devices' outcomes), else polled.
	liveRefresh('rollout.*,deployment.*', (e) => !e.rollout_id || e.rollout_id === id,
		() => draw(false).catch((e) => clear(msg).append(errorBox(e))));
}

// ---- create ----

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const list_ = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

function stageRow(percent, onSuccess) {
	return el('tr', {class: 'stage-row'},
		el('td', {}, el('input', {name: 'percent', type: 'number', min: '0.01', max: '100', step: '0.01', value: percent, size: 6})),
		el('td', {}, el('select', {name: 'on_success'}, ['auto', 'approval'].map((v) =>
			el('option', {value: v, selected: v === onSuccess}, v)))),
		el('td', {}, el('input', {name: 'success_threshold', type: 'number', min: 0, max: 100, value: 100})),
		el('td', {}, el('input', {name: 'failure_threshold', type: 'number', min: 0, max: 100, value: 0})),
		el('td', {}, el('input', {name: 'min_finished', type: 'number', min: 0, value: 1})),
		el('td', {}, el('input', {name: 'soak_seconds', type: 'number', min: 0, value: 0})),
		el('td', {}, el('button', {type: 'button', onclick: (ev) => ev.target.closest('tr').remove()}, 'Remove')));
}

export async function create(main) {
	main.append(el('h1', {}, 'New rollout'));
	const rel = api.items(await api.get('/api/v1/releases'));
	const f = (name, label, attrs = {}) => el('label', {}, label, ' ', el('input', {name, id: `f-${name}`, ...attrs}));
	const stages = el('tbody', {}, stageRow(10, 'approval'), stageRow(50, 'auto'), stageRow(100, 'auto'));
	const form = el('form', {id: 'rollout-form', class: 'rollout-form'},
		el('fieldset', {}, el('legend', {}, 'What'),
			f('name', 'Name', {required: true, maxlength: 64}),
			el('label', {}, 'Release ', el('select', {name: 'release_id', id: 'f-release'},
				rel.map((r) => el('option', {value: r.id}, `${r.name} ${r.version} (security ${r.security_version})`))))),
		el('fieldset', {}, el('legend', {}, 'Target (empty: every device)'),
			f('hw_variants', 'Hardware variants', {placeholder: 'pico2w, pico2'}),
			f('versions', 'Baseline versions', {placeholder: '1.0.0'}),
			f('range', 'Baseline range', {placeholder: '>=1.0.0 <2.0.0'}),
			f('tags_all', 'Tags, all of', {placeholder: 'site=berlin'}),
			f('tags_any', 'Tags, any of', {placeholder: 'line=1, line=2'})),
		el('fieldset', {}, el('legend', {}, 'Stages (cumulative %)'),
			el('table', {}, el('thead', {}, el('tr', {}, ['Percent', 'On success', 'Success %', 'Failure %', 'Min finished', 'Soak s', '']
				.map((h) => el('th', {}, h)))), stages),
			el('button', {type: 'button', onclick: () => stages.append(stageRow(100, 'auto'))}, 'Add stage')),
		el('fieldset', {}, el('legend', {}, 'Budgets and retries'),
			f('max_updating', 'Max updating at once (0: no limit)', {type: 'number', min: 0, value: 0}),
			f('per_tag_key', 'Per-tag budget key', {placeholder: 'line'}),
			f('per_tag_max', 'Max per tag value', {type: 'number', min: 1, value: 1}),
			f('attempts', 'Attempts', {type: 'number', min: 1, max: 100, value: 1}),
			f('backoff', 'Backoff s', {type: 'number', min: 0, value: 0})),
		el('fieldset', {}, el('legend', {}, 'Maintenance window (no day: always open)'),
			DAYS.map((d) => el('label', {class: 'day'}, el('input', {type: 'checkbox', name: 'day', value: d}), d)),
			f('start', 'Start', {placeholder: 'HH:MM', value: '02:00', size: 5}),
			f('duration', 'Minutes', {type: 'number', min: 1, max: 10080, value: 120}),
			f('tz', 'Time zone', {value: 'UTC'})),
		el('p', {}, el('button', {type: 'submit', id: 'plan-button'}, 'Show the plan'), ' ',
			el('button', {type: 'button', id: 'create-button'}, 'Create as draft')));
	const out = el('div', {id: 'plan-out'});
	main.append(form, out);

	const definition = () => {
		const v = (n) => form.elements[n].value.trim();
		const d = {name: v('name'), release_id: v('release_id'), target: {}, stages: []};
		if (v('hw_variants')) d.target.hw_variants = list_(v('hw_variants'));
		if (v('versions') || v('range')) {
			d.target.baseline = {};
			if (v('versions')) d.target.baseline.versions = list_(v('versions'));
			if (v('range')) d.target.baseline.range = v('range');
		}
		if (v('tags_all') || v('tags_any')) {
			d.target.tags = {};
			if (v('tags_all')) d.target.tags.all = list_(v('tags_all'));
			if (v('tags_any')) d.target.tags.any = list_(v('tags_any'));
		}
		for (const row of stages.querySelectorAll('tr')) {
			const g = (n) => row.querySelector(`[name=${n}]`).value;
			d.stages.push({percent: Number(g('percent')), on_success: g('on_success'),
				success_threshold: Number(g('success_threshold')), failure_threshold: Number(g('failure_threshold')),
				min_finished: Number(g('min_finished')), soak_seconds: Number(g('soak_seconds'))});
		}
		d.retry = {attempts: Number(v('attempts')), backoff_seconds: Number(v('backoff'))};
		d.budget = {max_updating: Number(v('max_updating'))};
		if (v('per_tag_key')) d.budget.per_tag = {key: v('per_tag_key'), max_updating: Number(v('per_tag_max'))};
		const days = [...form.querySelectorAll('input[name=day]:checked')].map((x) => x.value);
		if (days.length) d.window = {days, start: v('start'), duration_minutes: Number(v('duration')), time_zone: v('tz')};
		return d;
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clear(out).append(el('p', {}, 'Planning...'));
		try {
			clear(out).append(renderPlan(await api.post('/api/v1/rollouts/plan', definition())));
		} catch (e) {
			clear(out).append(errorBox(e));
		}
	});
	form.querySelector('#create-button').addEventListener('click', async () => {
		try {
			const r = await api.post('/api/v1/rollouts', definition());
			location.hash = `#/rollouts/${encodeURIComponent(r.id)}`;
		} catch (e) {
			clear(out).append(errorBox(e));
		}
	});
	main.append(el('p', {}, link('#/rollouts', 'Back to the rollouts')));
}
