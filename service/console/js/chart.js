// Charts over uPlot (vendored, see vendor/uplot/README.md): a segment's size sparkline, its
// history (size, entered, exited per refresh) and a preview's sizes over time. Each chart
// comes with its figures as a table, for screen readers and for copying.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { h, num, when } from './dom.js';

const seconds = (iso) => Math.floor(new Date(iso).getTime() / 1000);
const ACCENT = '#3b3fb6';

/** A 120×30 line of sizes over time (no axes); `points` are `[{as_of, size}]`. */
export function sparkline(el, points) {
  el.replaceChildren();
  if (!points.length) return;
  const sorted = [...points].sort((a, b) => seconds(a.as_of) - seconds(b.as_of));
  const data = [sorted.map((p) => seconds(p.as_of)), sorted.map((p) => p.size)];
  if (sorted.length === 1) {
    data[0].unshift(data[0][0] - 1);
    data[1].unshift(data[1][0]);
  }
  new uPlot({
    width: 120, height: 30, class: 'spark-plot',
    legend: { show: false }, cursor: { show: false }, select: { show: false },
    axes: [{ show: false }, { show: false }],
    scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] } },
    series: [{}, { stroke: ACCENT, width: 1.5, fill: 'rgba(59,63,182,.12)', points: { show: false } }],
  }, data, el);
}

/** The time axis' range for instants `xs` (seconds): theirs with a margin, and a day either
 *  side of a single one (uPlot's own default would stretch one instant over years). */
function timeRange(xs) {
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  const pad = max === min ? 86_400 : (max - min) * 0.04;
  return () => [min - pad, max + pad];
}

function width(el) {
  return Math.max(320, Math.floor(el.getBoundingClientRect().width || el.parentElement?.getBoundingClientRect().width || 640) - 4);
}

/** Size (line) and entered / exited (bars) per refresh; `refreshes` newest first, as
 *  `/v1/segments/{id}/history` gives them. */
export function historyChart(el, refreshes) {
  el.replaceChildren();
  // uPlot wants the instants ascending; a refresh may have been replayed at an earlier as_of.
  const rows = [...refreshes].sort((a, b) => seconds(a.as_of) - seconds(b.as_of));
  if (!rows.length) {
    el.append(h('p', { class: 'muted' }, 'Not refreshed yet: no history.'));
    return;
  }
  const chart = h('div', { class: 'chart', role: 'img', 'aria-label': `Size, entered and exited over ${rows.length} refreshes` });
  el.append(chart);
  const xs = rows.map((r) => seconds(r.as_of));
  // Entered left of the refresh's instant, exited right of it.
  const left = uPlot.paths.bars({ size: [0.3, 28], align: -1 });
  const right = uPlot.paths.bars({ size: [0.3, 28], align: 1 });
  new uPlot({
    width: width(el), height: 240,
    scales: { x: { time: true, range: timeRange(xs) }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] }, c: { range: (u, min, max) => [0, Math.max(1, max * 1.3)] } },
    axes: [{}, { label: 'members', size: 60 }, { side: 1, scale: 'c', label: 'changes', grid: { show: false }, size: 50 }],
    series: [
      { value: (u, v) => (v == null ? '—' : when(new Date(v * 1000).toISOString())) },
      { label: 'Size', stroke: ACCENT, width: 2, points: { size: 6 } },
      { label: 'Entered', scale: 'c', stroke: '#16794c', fill: 'rgba(22,121,76,.45)', paths: left, points: { show: false } },
      { label: 'Exited', scale: 'c', stroke: '#b3261e', fill: 'rgba(179,38,30,.45)', paths: right, points: { show: false } },
    ],
  }, [xs, rows.map((r) => r.size), rows.map((r) => r.entered), rows.map((r) => r.exited)], chart);
  el.append(h('details', { class: 'figures' },
    h('summary', {}, 'Figures'),
    h('table', { class: 'history-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Refreshed as of'), h('th', { class: 'num' }, 'Size'), h('th', { class: 'num' }, 'Entered'), h('th', { class: 'num' }, 'Exited'), h('th', { class: 'num' }, 'Took'))),
      h('tbody', {}, refreshes.map((r) => h('tr', { 'data-as-of': r.as_of, 'data-size': r.size, 'data-entered': r.entered, 'data-exited': r.exited },
        h('td', {}, when(r.as_of)), h('td', { class: 'num' }, num(r.size)), h('td', { class: 'num' }, num(r.entered)),
        h('td', { class: 'num' }, num(r.exited)), h('td', { class: 'num' }, `${num(r.duration_ms)} ms`)))))));
}

/** The sizes a definition would have had at several instants (`[{as_of, size}]`). */
export function sizesChart(el, sizes) {
  el.replaceChildren();
  const chart = h('div', { class: 'chart', role: 'img', 'aria-label': `Size at ${sizes.length} instants` });
  el.append(chart);
  new uPlot({
    width: width(el), height: 160,
    scales: { x: { time: true, range: timeRange(sizes.map((x) => seconds(x.as_of))) }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{}, { size: 50 }],
    legend: { show: false },
    series: [{}, { label: 'Size', stroke: ACCENT, width: 2, fill: 'rgba(59,63,182,.10)', points: { size: 5 } }],
  }, [sizes.map((s) => seconds(s.as_of)), sizes.map((s) => s.size)], chart);
  el.append(h('details', { class: 'figures' },
    h('summary', {}, 'Figures'),
    h('table', { class: 'sizes-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'As of'), h('th', { class: 'num' }, 'Size'))),
      h('tbody', {}, sizes.map((s) => h('tr', { 'data-as-of': s.as_of, 'data-size': s.size }, h('td', {}, when(s.as_of)), h('td', { class: 'num' }, num(s.size))))))));
}
