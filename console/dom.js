// Building the page from data, safely: every value becomes a text node or an attribute set
// with setAttribute, never parsed as markup: no HTML string is ever handed to the DOM.
const SVG = 'http://www.w3.org/2000/svg';

function append(parent, kids) {
	for (const k of kids.flat(Infinity)) {
		if (k === null || k === undefined || k === false) continue;
		parent.append(k instanceof Node ? k : document.createTextNode(String(k)));
	}
}

function set(e, attrs) {
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false) continue;
		if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
		else if (k === 'class') e.setAttribute('class', v);
		else e.setAttribute(k, v === true ? '' : String(v));
	}
}

// el('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child, ...)
export function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	set(e, attrs);
	append(e, kids);
	return e;
}

export function svg(tag, attrs, ...kids) {
	const e = document.createElementNS(SVG, tag);
	set(e, attrs);
	append(e, kids);
	return e;
}

export function clear(e) {
	while (e.firstChild) e.removeChild(e.firstChild);
	return e;
}

export function table(head, rows) {
	return el('table', {},
		el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
		el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

export function when(t) {
	if (t === null || t === undefined || t === 0) return '-';
	return new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function ago(t) {
	if (!t) return 'never';
	const s = Math.max(0, Math.round(Date.now() / 1000 - t));
	if (s < 90) return `${s} s ago`;
	if (s < 5400) return `${Math.round(s / 60)} min ago`;
	if (s < 129600) return `${Math.round(s / 3600)} h ago`;
	return `${Math.round(s / 86400)} d ago`;
}

export function duration(s) {
	if (s < 120) return `${s} s`;
	if (s < 7200) return `${Math.round(s / 60)} min`;
	if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
	return `${(s / 86400).toFixed(1)} d`;
}

export function link(href, text) {
	return el('a', {href}, text);
}

export function idlink(kind, id, text) {
	return link(`#/${kind}/${encodeURIComponent(id)}`, text ?? id);
}

// Horizontal bar chart of [label, count] pairs.
export function barChart(title, pairs, opts = {}) {
	const w = opts.width || 420, row = 22, label = 150;
	const max = Math.max(1, ...pairs.map((p) => p[1]));
	const s = svg('svg', {width: w, height: row * pairs.length + 4, class: 'chart', role: 'img', 'aria-label': title});
	pairs.forEach(([name, n], i) => {
		const y = i * row + 2;
		const bw = Math.max(1, Math.round(((w - label - 60) * n) / max));
		s.append(svg('text', {x: 0, y: y + 15, class: 'chart-label'}, String(name).slice(0, 22)));
		s.append(svg('rect', {x: label, y, width: bw, height: row - 6, class: 'bar'}));
		s.append(svg('text', {x: label + bw + 6, y: y + 15, class: 'chart-value'}, String(n)));
	});
	return el('figure', {class: 'card'}, el('figcaption', {}, title), s);
}

// One stacked bar: [[class, n, label]...] over total.
export function stackBar(parts, total, width = 320) {
	const s = svg('svg', {width, height: 18, class: 'stack', role: 'img'});
	let x = 0;
	s.append(svg('rect', {x: 0, y: 0, width, height: 18, class: 'stack-bg'}));
	for (const [cls, n, label] of parts) {
		if (!n || !total) continue;
		const w = Math.max(1, Math.round((width * n) / total));
		s.append(svg('rect', {x, y: 0, width: w, height: 18, class: cls}, svg('title', {}, `${label}: ${n}`)));
		x += w;
	}
	return s;
}
