// Words for the segment language's names: columns, event types, operators, periods and
// measures, in English with the ikas panel's Turkish name where there is one. Names that are
// not listed here (custom columns, shop-specific event types) are shown as they are.

const COLUMNS = {
  customer_id: 'Customer id',
  email: 'E-mail address',
  phone: 'Phone',
  email_consent: 'E-mail consent (Pazarlama İzni)',
  sms_consent: 'SMS consent',
  consent_updated_at: 'Consent updated at',
  tags: 'Tags (Etiket)',
  customer_group: 'Customer group (Müşteri Grubu)',
  total_order_amount: 'Total order amount',
  b2b_status: 'B2B status',
  language: 'Language (Dil Tercihi)',
  registered_at: 'Registered at (Hesap Aktivasyon)',
  password_updated_at: 'Password updated at',
  account_status: 'Account status (Hesap Durumu)',
  birth_date: 'Birth date',
  gender: 'Gender',
  updated_at: 'Profile updated at',
  first_name: 'First name',
  last_name: 'Last name',
  city: 'City',
  event_id: 'Event id',
  anonymous_id: 'Anonymous id',
  event_type: 'Event type',
  ts: 'Time',
  session_id: 'Session',
  product_id: 'Product',
  category_id: 'Category',
  brand_id: 'Brand',
  order_id: 'Order',
  amount: 'Amount',
  quantity: 'Quantity',
  currency: 'Currency',
  payment_method: 'Payment method (Ödeme Yöntemi)',
  shipping_country: 'Shipping country',
  billing_country: 'Billing country',
  rating: 'Rating (stars)',
  campaign_id: 'Campaign',
  checkout_step: 'Checkout step',
  page_id: 'Page',
};

/** A column's label: `E-mail consent (Pazarlama İzni)`, or the name of a custom column. */
export function columnLabel(name) {
  return COLUMNS[name] ?? name;
}

/** The ikas groups of the contract's event types, for grouping a choice of them. */
export const EVENT_GROUPS = [
  ['Product (Ürün)', ['product_viewed', 'product_added_to_cart', 'product_removed_from_cart', 'product_added_to_favorites', 'product_reviewed']],
  ['Order (Sipariş)', ['order_created', 'order_delivered', 'order_refunded', 'order_cancelled']],
  ['Marketing (Pazarlama)', ['email_sent', 'email_opened', 'email_clicked', 'sms_sent', 'sms_clicked', 'popup_form_submitted']],
  ['Engagement (Etkileşim)', ['category_viewed', 'brand_viewed', 'checkout_step_viewed', 'blog_viewed', 'search_performed']],
  ['Identity', ['identified']],
];

const EVENTS = {
  product_viewed: 'Viewed a product',
  product_added_to_cart: 'Added to cart',
  product_removed_from_cart: 'Removed from cart',
  product_added_to_favorites: 'Added to favourites',
  product_reviewed: 'Reviewed a product',
  order_created: 'Placed an order',
  order_delivered: 'Order delivered',
  order_refunded: 'Order refunded',
  order_cancelled: 'Order cancelled',
  email_sent: 'Was sent an e-mail',
  email_opened: 'Opened an e-mail',
  email_clicked: 'Clicked an e-mail',
  sms_sent: 'Was sent an SMS',
  sms_clicked: 'Clicked an SMS',
  popup_form_submitted: 'Submitted a popup form',
  category_viewed: 'Viewed a category',
  brand_viewed: 'Viewed a brand',
  checkout_step_viewed: 'Viewed a checkout step',
  blog_viewed: 'Read a blog post',
  search_performed: 'Searched',
  identified: 'Identified (logged in)',
};

/** An event type's label: `Added to favourites`, or the type itself. */
export function eventLabel(type) {
  return EVENTS[type] ?? type;
}

/** Operators as a marketer reads them, for columns and measures. */
const OPS = {
  eq: 'is',
  neq: 'is not',
  in: 'is one of',
  not_in: 'is none of',
  contains: 'contains',
  not_contains: 'does not contain',
  starts_with: 'starts with',
  ends_with: 'ends with',
  domain_in: 'has its domain in',
  gt: 'is more than',
  gte: 'is at least',
  lt: 'is less than',
  lte: 'is at most',
  between: 'is between',
  within_last: 'is within the last',
  older_than: 'is more than … ago',
  is_set: 'is set',
  is_not_set: 'is not set',
  has_any: 'has any of',
  has_all: 'has all of',
  has_none: 'has none of',
  top_percent: 'is in the top … %',
  bottom_percent: 'is in the bottom … %',
};

/** Instants read better with before/after than with more/less. */
const INSTANT_OPS = { gt: 'is after', gte: 'is on or after', lt: 'is before', lte: 'is on or before', eq: 'is at' };

/** An operator's words; `instant` for timestamp columns and time measures. */
export function opLabel(op, { instant = false } = {}) {
  return (instant && INSTANT_OPS[op]) || OPS[op] || op;
}

/** The operators of event measures, as the language gives them (`parse.rs`: the number
 *  operators and the percent ranks for numeric measures, the timestamp ones for times). */
export const MEASURE_OPS = {
  number: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'top_percent', 'bottom_percent'],
  instant: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'within_last', 'older_than'],
};

/** The measures of an event condition: key, label, and what column it takes. */
export const MEASURES = [
  ['count', 'Number of events', null],
  ['sum', 'Sum of', 'number'],
  ['avg', 'Average of', 'number'],
  ['min', 'Lowest', 'number'],
  ['max', 'Highest', 'number'],
  ['distinct', 'Number of different', 'any'],
  ['active_days', 'Number of active days', null],
  ['first_time', 'Time of the first event', null],
  ['last_time', 'Time of the latest event', null],
];

const UNITS = { m: ['minute', 'minutes'], h: ['hour', 'hours'], d: ['day', 'days'], w: ['week', 'weeks'] };

/** `30d` as `30 days`. */
export function durationText(text) {
  const match = /^(\d+)([mhdw])$/.exec(String(text ?? ''));
  if (!match) return String(text ?? '');
  const n = Number(match[1]);
  return `${n} ${UNITS[match[2]][n === 1 ? 0 : 1]}`;
}

/** A period as words: `in the last 30 days`. */
export function periodText(period) {
  if (period === undefined || period === 'all_time') return 'over all time';
  if (period.last) return `in the last ${durationText(period.last)}`;
  if (period.before_last) return `before the last ${durationText(period.before_last)}`;
  if (period.since) return `since ${period.since}`;
  if (period.between) return `from ${period.between[0]} until before ${period.between[1]}`;
  return JSON.stringify(period);
}
