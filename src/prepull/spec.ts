import { z } from 'zod';
import { formatImageReference, parseImageReference } from '../oci/index.js';
import { parseCron } from './schedule.js';
import {
  CRON_PATTERN,
  DNS_SUBDOMAIN_PATTERN,
  IMAGE_REFERENCE_PATTERN,
  PERCENT_PATTERN,
  TIME_ZONE_PATTERN,
} from './patterns.js';
import { DEFAULTS, LIMITS, type Toleration } from './types.js';

/**
 * A PrePull spec as the controller reads it: the CRD's rules again (defence in depth: an object
 * stored before the CRD was upgraded, or written around it, must not reach the planner), defaults
 * applied and images normalised the way containerd names them.
 */

export type ConcurrencyLimit = { kind: 'count'; value: number } | { kind: 'percent'; value: number };

export interface PrePullSpec {
  /** Normalised (`nginx` -> `docker.io/library/nginx:latest`), duplicates dropped, in spec order. */
  images: string[];
  imagePullSecrets: string[];
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  schedule?: string;
  timeZone?: string;
  suspend: boolean;
  maxConcurrentNodes: ConcurrencyLimit;
  maxConcurrentPullsPerNode: number;
  retry: { limit: number; backoffSeconds: number };
  progressTimeoutSeconds: number;
  pin: boolean;
}

export function normaliseImage(image: string): string {
  return formatImageReference(parseImageReference(image.trim()));
}

const IMAGE_RE = new RegExp(IMAGE_REFERENCE_PATTERN);
const int = (min: number, max: number) => z.number().int().min(min).max(max);

const imageSchema = z
  .string()
  .max(LIMITS.maxImageLength)
  .regex(IMAGE_RE, 'must be an image reference such as registry.example/repo:tag or repo@sha256:...')
  .transform((value, ctx) => {
    try {
      return normaliseImage(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const tolerationSchema = z
  .object({
    key: z.string().max(317).optional(),
    operator: z.enum(['Exists', 'Equal']).optional(),
    value: z.string().max(63).optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute', '']).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .refine((t) => t.operator !== 'Exists' || !t.value, {
    message: 'value must be empty when operator is Exists',
    path: ['value'],
  })
  .refine((t) => !!t.key || t.operator === 'Exists', {
    message: 'operator must be Exists when key is empty',
    path: ['operator'],
  });

const maxConcurrentNodesSchema = z.union([
  z
    .number()
    .int()
    .min(1)
    .transform((value): ConcurrencyLimit => ({ kind: 'count', value })),
  z
    .string()
    .regex(new RegExp(PERCENT_PATTERN), 'must be an integer >= 1 or a percentage from "1%" to "100%"')
    .transform((s): ConcurrencyLimit => ({ kind: 'percent', value: Number(s.slice(0, -1)) })),
]);

export const prePullSpecSchema = z
  .object({
    images: z
      .array(z.string())
      .min(1, 'must list at least one image')
      .max(LIMITS.maxImages)
      // The CRD's list is a set: the same string twice is refused there, so here too.
      .superRefine((images, ctx) => {
        const seen = new Set<string>();
        images.forEach((image, i) => {
          if (seen.has(image))
            ctx.addIssue({ code: 'custom', path: [i], message: `Duplicate value: "${image}"` });
          seen.add(image);
        });
      })
      .pipe(z.array(imageSchema))
      // Spellings of one image (nginx, docker.io/library/nginx:latest) become one entry.
      .transform((images) => [...new Set(images)]),
    imagePullSecrets: z
      .array(z.object({ name: z.string().max(253).regex(new RegExp(DNS_SUBDOMAIN_PATTERN)) }))
      .max(LIMITS.maxPullSecrets)
      .default([])
      .transform((secrets) => [...new Set(secrets.map((s) => s.name))]),
    nodeSelector: z
      .record(z.string().min(1).max(317), z.string().max(63))
      .refine((m) => Object.keys(m).length <= LIMITS.maxSelectorPairs, {
        message: `at most ${LIMITS.maxSelectorPairs} pairs`,
      })
      .default({}),
    tolerations: z.array(tolerationSchema).max(LIMITS.maxTolerations).default([]),
    schedule: z
      .string()
      .max(LIMITS.maxScheduleLength)
      .regex(new RegExp(CRON_PATTERN), 'must be five cron fields: minute hour day-of-month month day-of-week')
      .optional(),
    timeZone: z
      .string()
      .max(LIMITS.maxTimeZoneLength)
      .regex(new RegExp(TIME_ZONE_PATTERN), 'must be an IANA time zone name such as Europe/Paris')
      .refine(isTimeZone, 'is not a time zone this runtime knows (IANA name such as Europe/Paris)')
      .optional(),
    suspend: z.boolean().default(DEFAULTS.suspend),
    maxConcurrentNodes: maxConcurrentNodesSchema.default({
      kind: 'count',
      value: DEFAULTS.maxConcurrentNodes,
    }),
    maxConcurrentPullsPerNode: int(1, LIMITS.maxPullsPerNode).default(DEFAULTS.maxConcurrentPullsPerNode),
    retry: z
      .object({
        limit: int(0, LIMITS.maxRetryLimit).default(DEFAULTS.retryLimit),
        backoffSeconds: int(1, LIMITS.maxBackoffSeconds).default(DEFAULTS.retryBackoffSeconds),
      })
      .default({ limit: DEFAULTS.retryLimit, backoffSeconds: DEFAULTS.retryBackoffSeconds }),
    progressTimeoutSeconds: int(LIMITS.minProgressTimeoutSeconds, LIMITS.maxProgressTimeoutSeconds).default(
      DEFAULTS.progressTimeoutSeconds,
    ),
    pin: z.boolean().default(DEFAULTS.pin),
  })
  .superRefine((spec, ctx) => {
    if (spec.timeZone !== undefined && spec.schedule === undefined) {
      ctx.addIssue({ code: 'custom', path: ['timeZone'], message: 'timeZone is set only with schedule' });
    }
    if (spec.schedule !== undefined) {
      try {
        parseCron(spec.schedule, spec.timeZone);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['schedule'], message: (err as Error).message });
      }
    }
  });

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export type SpecParseResult = { ok: true; spec: PrePullSpec } | { ok: false; error: string };

/** Parses a stored spec; on failure, one line naming the field (`spec.images[2]: ...`). */
export function parsePrePullSpec(raw: unknown): SpecParseResult {
  const parsed = prePullSpecSchema.safeParse(raw ?? {});
  if (parsed.success) {
    const s = parsed.data;
    return {
      ok: true,
      spec: {
        ...s,
        ...(s.schedule === undefined ? {} : { schedule: s.schedule }),
        ...(s.timeZone === undefined ? {} : { timeZone: s.timeZone }),
      } as PrePullSpec,
    };
  }
  const issue = parsed.error.issues[0];
  const path = ['spec', ...(issue?.path ?? [])]
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
  return { ok: false, error: `${path}: ${issue?.message ?? 'invalid'}` };
}
