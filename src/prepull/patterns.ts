/**
 * Regular expressions shared by the CRD (OpenAPI `pattern` and CEL `matches`, both RE2 in the
 * API server) and the zod schema the controller parses with, so both refuse the same input.
 * They use only syntax RE2 and ECMAScript read alike: no lookaround, no inline flags, and no
 * backslashes in what CEL embeds (a CEL string literal would need them doubled).
 */

// Docker's reference grammar (distribution/reference): a first component is a registry host when
// it has a dot or a port, or is localhost; path components as in the OCI distribution-spec.
const HOST_LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const DOMAIN =
  `(?:${HOST_LABEL}(?:\\.${HOST_LABEL})+(?::[0-9]+)?` +
  `|${HOST_LABEL}:[0-9]+` +
  `|localhost` +
  `|\\[[0-9a-fA-F:.]+\\](?::[0-9]+)?)`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}';
const DIGEST = '(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})';

/** `[registry/]repository[:tag][@digest]`, as parseImageReference (src/oci) accepts it. */
export const IMAGE_REFERENCE_PATTERN = `^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`;

function anyCase(word: string): string {
  return [...word].map((c) => `[${c.toUpperCase()}${c.toLowerCase()}]`).join('');
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** One cron field: `*`, values and ranges, each with an optional `/step`, joined by commas. */
function cronField(value: string): string {
  const item = `(?:[*]|(?:${value})(?:-(?:${value}))?)(?:/[1-9][0-9]?)?`;
  return `${item}(?:,${item})*`;
}

const CRON_FIELDS = [
  '[0-5]?[0-9]', // minute
  '[01]?[0-9]|2[0-3]', // hour
  '0?[1-9]|[12][0-9]|3[01]', // day of month
  ['0?[1-9]|1[0-2]', ...MONTHS.map(anyCase)].join('|'), // month
  ['[0-7]', ...DAYS.map(anyCase)].join('|'), // day of week (0 and 7 are Sunday)
];

/**
 * Standard five-field cron (minute hour day-of-month month day-of-week), with names for months
 * and days; no seconds, no `@daily` nicknames and no Quartz extensions (`?`, `L`, `W`, `#`).
 */
export const CRON_PATTERN = `^${CRON_FIELDS.map(cronField).join(' +')}$`;

/** `"1%"` to `"100%"`. */
export const PERCENT_PATTERN = '^(?:[1-9][0-9]?|100)%$';

/** An IANA time zone name's shape (`UTC`, `Europe/Paris`, `Etc/GMT+5`); the zone itself is checked by Intl. */
export const TIME_ZONE_PATTERN = '^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$';

/** A Kubernetes object name (RFC 1123 subdomain), such as a Secret's. */
export const DNS_SUBDOMAIN_PATTERN =
  '^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$';
