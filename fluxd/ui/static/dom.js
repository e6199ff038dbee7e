/*
 * fluxd status UI: DOM builders, display formatting and a debounce, shared by app.js and
 * graph.js.
 *
 * Every value from the API reaches the page through these builders, which only ever use
 * textContent and setAttribute, so nothing the cluster holds is parsed as markup.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';
export const STATES = ['ready', 'progressing', 'failed', 'stalled', 'suspended', 'unknown'];

export function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  node.append(...children.flat(Infinity).filter((child) => child !== null && child !== undefined));
  return node;
}

export function svgEl(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attributes);
  node.append(...children);
  return node;
}

export const muted = (text) => el('p', { class: 'muted', text });
export const quote = (key) => CSS.escape(key);

export function stateBadge(state) {
  const known = STATES.includes(state) ? state : 'unknown';
  return el('span', { class: `badge state-${known}`, text: known });
}

export const objectPath = (kind, namespace, name) => [kind, namespace, name].map(encodeURIComponent).join('/');
export const objectHash = (ref) => `#/object/${objectPath(ref.kind, ref.namespace, ref.name)}`;

export function compareRows(a, b) {
  for (const field of ['kind', 'namespace', 'name']) {
    if (a[field] !== b[field]) return a[field] < b[field] ? -1 : 1;
  }
  return 0;
}

export function shortRevision(revision) {
  return (revision || '').replace(/\b(sha1|sha256|sha384|sha512):([0-9a-f]{8})[0-9a-f]+/g, '$1:$2');
}

export function shortDigest(digest) {
  return (digest || '').replace(/^([a-z0-9]+:)?([0-9a-f]{12})[0-9a-f]+$/, '$1$2');
}

export function relativeTime(iso) {
  if (!iso) return '';
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (Number.isNaN(seconds)) return String(iso);
  if (seconds < 5) return 'just now';
  if (seconds < 90) return `${seconds}s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}

// A relative time; app.js refreshes every [data-time] element every few seconds.
export function timeCell(tag, iso) {
  return el(tag, { class: 'time', 'data-time': iso || null, title: iso || null, text: relativeTime(iso) });
}

export function formatDuration(seconds) {
  if (typeof seconds !== 'number') return '';
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  return `${Math.floor(seconds / 60)}m${Math.floor(seconds % 60)}s`;
}

export function debounce(fn, milliseconds) {
  let timer = null;
  const debounced = () => {
    clearTimeout(timer);
    timer = setTimeout(fn, milliseconds);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}
