/*
 * fluxd status UI: the dependency graph's layout and SVG drawing (no API calls here).
 *
 * Nodes are objects, edges run from the upstream object (a source, a dependency, a
 * provider) to the one that uses it. app.js fetches api/graph and hands it to drawGraph;
 * stream updates repaint single nodes through paintNode and paintEdge.
 */
import { compareRows, objectHash, setAttributes, svgEl } from './dom.js';

const GRAPH = { nodeWidth: 210, nodeHeight: 42, gapX: 90, gapY: 14, margin: 24 };

// One namespace's objects plus whatever they link to elsewhere (a shared source, say).
export function visibleGraph(data, namespace) {
  if (!namespace) return data;
  const keep = new Set(data.nodes.filter((node) => node.namespace === namespace).map((node) => node.key));
  const edges = data.edges.filter((edge) => keep.has(edge.from) || keep.has(edge.to));
  for (const edge of edges) keep.add(edge.from).add(edge.to);
  return { nodes: data.nodes.filter((node) => keep.has(node.key)), edges };
}

/*
 * Layered layout: a node's column is the length of the longest path reaching it from a
 * node with no upstream (sources land in column 0, a consumer one right of its deepest
 * upstream); a cycle is cut where the walk meets it. Within columns a few barycentre
 * sweeps, down then up, order nodes by the mean position of their neighbours, which
 * removes most crossings for graphs shaped like Flux's. Objects with no link at all are
 * set out in a grid underneath instead of making column 0 very tall.
 */
export function layoutGraph(nodes, edges) {
  const upstream = new Map(nodes.map((node) => [node.key, []]));
  const downstream = new Map(nodes.map((node) => [node.key, []]));
  for (const edge of edges) {
    if (!upstream.has(edge.to) || !downstream.has(edge.from) || edge.from === edge.to) continue;
    upstream.get(edge.to).push(edge.from);
    downstream.get(edge.from).push(edge.to);
  }
  const depth = new Map();
  const walking = new Set();
  const depthOf = (key) => {
    if (depth.has(key)) return depth.get(key);
    if (walking.has(key)) return 0;
    walking.add(key);
    const value = upstream.get(key).reduce((deepest, up) => Math.max(deepest, depthOf(up) + 1), 0);
    walking.delete(key);
    depth.set(key, value);
    return value;
  };
  const columns = [];
  const isolated = [];
  for (const node of [...nodes].sort(compareRows)) {
    if (!upstream.get(node.key).length && !downstream.get(node.key).length) {
      isolated.push(node.key);
    } else {
      const column = depthOf(node.key);
      columns[column] = [...(columns[column] || []), node.key];
    }
  }
  for (let index = 0; index < columns.length; index += 1) columns[index] = columns[index] || [];
  orderColumns(columns, upstream, downstream);

  const { nodeWidth, nodeHeight, gapX, gapY, margin } = GRAPH;
  const columnWidth = nodeWidth + gapX;
  const rowHeight = nodeHeight + gapY;
  const tallest = Math.max(0, ...columns.map((column) => column.length));
  const positions = new Map();
  columns.forEach((column, columnIndex) => {
    const offset = ((tallest - column.length) * rowHeight) / 2;
    column.forEach((key, rowIndex) => positions.set(key, { x: margin + columnIndex * columnWidth, y: margin + offset + rowIndex * rowHeight }));
  });
  const gridColumns = Math.max(columns.length, Math.min(6, isolated.length), 1);
  const gridTop = margin + (tallest ? tallest * rowHeight + 2 * gapY : 0);
  isolated.forEach((key, index) => {
    positions.set(key, { x: margin + (index % gridColumns) * columnWidth, y: gridTop + Math.floor(index / gridColumns) * rowHeight });
  });
  return {
    nodes: nodes.map((node) => ({ ...node, ...positions.get(node.key) })),
    positions,
    width: 2 * margin + gridColumns * columnWidth - gapX,
    height: gridTop + Math.ceil(isolated.length / gridColumns) * rowHeight - gapY + margin,
  };
}

function orderColumns(columns, upstream, downstream) {
  const centred = new Map();
  const place = (column) => column.forEach((key, index) => centred.set(key, index - (column.length - 1) / 2));
  columns.forEach(place);
  const sweep = (column, neighbours) => {
    const weight = new Map(column.map((key) => {
      const placed = neighbours.get(key).filter((other) => centred.has(other));
      const mean = placed.reduce((sum, other) => sum + centred.get(other), 0) / (placed.length || 1);
      return [key, placed.length ? mean : centred.get(key)];
    }));
    column.sort((a, b) => weight.get(a) - weight.get(b));
    place(column);
  };
  for (let pass = 0; pass < 4; pass += 1) {
    for (let index = 1; index < columns.length; index += 1) sweep(columns[index], upstream);
    for (let index = columns.length - 2; index >= 0; index -= 1) sweep(columns[index], downstream);
  }
}

// Replaces the picture with the laid-out graph; its size is on the .viewport group for fitting.
export function drawGraph(svg, layout, edges) {
  svg.replaceChildren(arrowMarkers(), graphContent(layout, edges));
}

function arrowMarkers() {
  const marker = (id) => svgEl('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    svgEl('path', { d: 'M0,0 L10,5 L0,10 z', class: `${id}-head` }));
  return svgEl('defs', {}, marker('arrow'), marker('arrow-failed'));
}

function graphContent(layout, edges) {
  const { nodeWidth, nodeHeight } = GRAPH;
  const states = new Map(layout.nodes.map((node) => [node.key, node.state]));
  const edgeGroup = svgEl('g', { class: 'edges' });
  for (const edge of edges) {
    const from = layout.positions.get(edge.from);
    const to = layout.positions.get(edge.to);
    if (!from || !to) continue;
    const [x1, y1, x2, y2] = [from.x + nodeWidth, from.y + nodeHeight / 2, to.x, to.y + nodeHeight / 2];
    const bend = Math.max(40, Math.abs(x2 - x1) / 2);
    const path = svgEl('path', {
      class: `edge edge-${edge.type}`, 'data-from': edge.from, 'data-to': edge.to,
      d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
    }, svgEl('title', { text: `${edge.from} → ${edge.to} (${edge.type})` }));
    paintEdge(path, states.get(edge.from));
    edgeGroup.append(path);
  }
  const nodeGroup = svgEl('g', { class: 'nodes' }, ...layout.nodes.map(graphNode));
  return svgEl('g', { class: 'viewport', 'data-width': layout.width, 'data-height': layout.height }, edgeGroup, nodeGroup);
}

function graphNode(node) {
  const name = node.name.length > 28 ? `${node.name.slice(0, 27)}…` : node.name;
  const group = svgEl('g', { class: 'node', 'data-key': node.key, transform: `translate(${node.x} ${node.y})`, tabindex: 0, role: 'link' },
    svgEl('title'),
    svgEl('rect', { width: GRAPH.nodeWidth, height: GRAPH.nodeHeight, rx: 6, ry: 6 }),
    svgEl('text', { class: 'node-kind', x: 10, y: 16, text: `${node.kind} · ${node.namespace}` }),
    svgEl('text', { class: 'node-state', x: GRAPH.nodeWidth - 8, y: 16, 'text-anchor': 'end' }),
    svgEl('text', { class: 'node-name', x: 10, y: 33, text: name }));
  paintNode(group, node.state);
  return group;
}

// The state shows as colour and as a word, in the node and in its tooltip.
export function paintNode(group, state) {
  const label = `${group.getAttribute('data-key')} (${state})`;
  setAttributes(group, { 'data-state': state, class: `node state-${state}`, 'aria-label': label });
  group.querySelector('.node-state').textContent = state;
  group.querySelector('title').textContent = label;
}

// A failing upstream paints its outgoing links red: that is where the failure spreads.
export function paintEdge(path, upstreamState) {
  const failed = upstreamState === 'failed' || upstreamState === 'stalled';
  path.classList.toggle('edge-failed', failed);
  path.setAttribute('marker-end', `url(#${failed ? 'arrow-failed' : 'arrow'})`);
}

export function enablePanZoom(svg, transform, apply) {
  let drag = null;
  let suppressClick = false;
  svg.addEventListener('wheel', (event) => {
    event.preventDefault();
    const box = svg.getBoundingClientRect();
    const [pointX, pointY] = [event.clientX - box.left, event.clientY - box.top];
    const scale = Math.min(3, Math.max(0.1, transform.k * Math.exp(-event.deltaY * 0.0015)));
    transform.x = pointX - ((pointX - transform.x) * scale) / transform.k;
    transform.y = pointY - ((pointY - transform.y) * scale) / transform.k;
    transform.k = scale;
    apply();
  }, { passive: false });
  svg.addEventListener('pointerdown', (event) => {
    if (event.button === 0) drag = { startX: event.clientX, startY: event.clientY, x: transform.x, y: transform.y, moved: false, id: event.pointerId };
  });
  svg.addEventListener('pointermove', (event) => {
    if (!drag) return;
    const [dx, dy] = [event.clientX - drag.startX, event.clientY - drag.startY];
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    // Capture only once it is a drag, so a plain click still lands on the node.
    if (!drag.moved) svg.setPointerCapture(drag.id);
    drag.moved = true;
    transform.x = drag.x + dx;
    transform.y = drag.y + dy;
    apply();
  });
  const endDrag = () => {
    suppressClick = Boolean(drag && drag.moved);
    drag = null;
  };
  svg.addEventListener('pointerup', endDrag);
  svg.addEventListener('pointercancel', endDrag);
  svg.addEventListener('click', (event) => {
    if (!suppressClick) openNode(event.target.closest('g.node'));
    suppressClick = false;
  });
  svg.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' && event.key !== ' ') return;
    event.preventDefault();
    openNode(event.target.closest('g.node'));
  });
}

function openNode(group) {
  if (!group) return;
  const [kind, namespace, name] = group.getAttribute('data-key').split('/');
  location.hash = objectHash({ kind, namespace, name });
}
