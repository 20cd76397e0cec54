/**
 * Reading user-written objects for validation; declared with the API (src/api/fields.ts) so the
 * declaration can word its messages with the same helpers.
 */
export { QUOTE_MAX_CHARS, describeValue, get, isObj, quoteValue, type Obj } from '../api/fields.js';
