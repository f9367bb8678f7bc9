// A definition as readable sentences (a nested list), from the same row kinds the builder
// edits with, so that what the builder shows and what the segment page says agree.

import { h } from './dom.js';
import './builder/rows/index.js';
import { describe } from './builder/registry.js';

function item(node) {
  return h('li', {}, node.text, node.children.length ? h('ul', {}, node.children.map(item)) : null);
}

/** `<ul class="sentences">` for a condition; `ctx` has `schema` and `segments`. */
export function sentences(condition, ctx) {
  return h('ul', { class: 'sentences' }, item(describe(condition, ctx)));
}
