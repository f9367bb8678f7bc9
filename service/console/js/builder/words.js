// Sentences for tests (`E-mail consent is “granted”`) and sequence steps, shared by the
// attribute, event and sequence rows and the customer page's explanations.

import { columnLabel, durationText, eventLabel, opLabel } from '../labels.js';

/** A value as words: texts quoted, lists joined, durations spelled out. */
export function valueText(value) {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map(valueText).join(', ');
  if (typeof value === 'string') return /^\d+[mhdw]$/.test(value) ? durationText(value) : `“${value}”`;
  return String(value);
}

/** `subject op value` for any operator of the language. */
export function comparisonText(subject, op, value, { instant = false } = {}) {
  switch (op) {
    case 'is_set':
    case 'is_not_set':
      return `${subject} ${opLabel(op)}`;
    case 'within_last':
      return `${subject} is within the last ${valueText(value)}`;
    case 'older_than':
      return `${subject} is more than ${valueText(value)} ago`;
    case 'between':
      return Array.isArray(value) ? `${subject} is between ${valueText(value[0])} and ${valueText(value[1])}` : `${subject} is between ${valueText(value)}`;
    case 'top_percent':
      return `${subject} is in the top ${value} %`;
    case 'bottom_percent':
      return `${subject} is in the bottom ${value} %`;
    default:
      return `${subject} ${opLabel(op, { instant })} ${valueText(value)}`;
  }
}

/** A test on a column (attribute condition or `where` filter) as a sentence. */
export function testText(name, test, kind) {
  const text = comparisonText(columnLabel(name), test.op, test.value, { instant: kind === 'timestamp' });
  return test.ignore_case ? `${text} (ignoring case)` : text;
}

/** A sequence step as words: `“Viewed a product” where Category is “cat-ayakkabı”`;
 *  `schema` (optional) tells which properties are timestamps. */
export function stepText(step, schema) {
  const names = (Array.isArray(step.event) ? step.event : [step.event]).map((t) => `“${eventLabel(t)}”`).join(' or ');
  const where = (step.where ?? []).map((f) => testText(f.property, f, schema?.events?.find((c) => c.name === f.property)?.type));
  return where.length ? `${names} where ${where.join(' and ')}` : names;
}
