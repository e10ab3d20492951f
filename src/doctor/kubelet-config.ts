import { parseAllDocuments } from 'yaml';
import type { Finding } from '../analyze/index.js';
import { parseGoDuration } from '../analyze/index.js';
import { DoctorError } from './errors.js';
import { checkKubeletFields } from './kubelet-fields.js';

/**
 * Checks of a KubeletConfiguration (kubelet.config.k8s.io/v1beta1) that decide how fast and how
 * reliably images are pulled. Defaults and validation follow the kubelet's own
 * (pkg/kubelet/apis/config/v1beta1/defaults.go and validation/validation.go). Pure.
 */

export const KUBELET_DEFAULTS = {
  serializeImagePulls: true,
  imageGCHighThresholdPercent: 85,
  imageGCLowThresholdPercent: 80,
  imageMinimumGCAge: '2m',
  registryPullQPS: 5,
  registryBurst: 10,
  evictionHardImagefsAvailable: '15%',
} as const;

export type KubeletConfig = Record<string, unknown>;

export function parseKubeletConfig(text: string, source: string): KubeletConfig {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) {
    const err = d.errors[0];
    if (err) {
      throw new DoctorError('CONFIG_INVALID', `${source} is not valid YAML: ${err.message.split('\n')[0]}`);
    }
  }
  const values = list.map((d) => d.toJS() as unknown);
  const config = values.find(
    (v) =>
      typeof v === 'object' && v !== null && (v as Record<string, unknown>).kind === 'KubeletConfiguration',
  );
  if (!config) {
    throw new DoctorError(
      'CONFIG_INVALID',
      `${source} has no "kind: KubeletConfiguration" document; pass the kubelet's --config file`,
    );
  }
  return config as KubeletConfig;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function checkKubeletConfig(config: KubeletConfig): Finding[] {
  const out: Finding[] = [];
  const add = (rule: string, severity: Finding['severity'], message: string, fix: string) =>
    out.push({ rule, severity, message, fix });

  // Unknown and misspelt fields first: the checks below see the defaults they leave in force.
  out.push(...checkKubeletFields(config));

  // Parallel pulls.
  const serialize = config.serializeImagePulls === undefined ? true : config.serializeImagePulls === true;
  const maxParallel = num(config.maxParallelImagePulls);
  if (
    config.maxParallelImagePulls !== undefined &&
    config.maxParallelImagePulls !== null &&
    maxParallel === undefined
  ) {
    add(
      'max-parallel-invalid',
      'error',
      'maxParallelImagePulls is not a number',
      'set maxParallelImagePulls to an integer such as 5',
    );
  } else if (maxParallel !== undefined && maxParallel < 1) {
    add(
      'max-parallel-invalid',
      'error',
      `maxParallelImagePulls: ${maxParallel} must be at least 1`,
      'set maxParallelImagePulls: 5',
    );
  }
  if (serialize && maxParallel !== undefined && maxParallel > 1) {
    add(
      'parallel-pulls-invalid',
      'error',
      `maxParallelImagePulls: ${maxParallel} with serializeImagePulls: true${config.serializeImagePulls === undefined ? ' (the default)' : ''}: the kubelet refuses this configuration`,
      'set serializeImagePulls: false',
    );
  } else if (serialize) {
    add(
      'serial-pulls',
      'warning',
      `serializeImagePulls is ${config.serializeImagePulls === undefined ? 'true by default' : 'true'}: the node pulls one image at a time, so one large image holds up every other pod's pull`,
      'set serializeImagePulls: false and maxParallelImagePulls: 5',
    );
  } else if (maxParallel === undefined) {
    add(
      'unbounded-parallel-pulls',
      'info',
      'serializeImagePulls: false without maxParallelImagePulls: any number of pulls at once compete for disk and network',
      'set maxParallelImagePulls (e.g. 5) to bound concurrent pulls',
    );
  }

  // Image garbage collection.
  const high = num(config.imageGCHighThresholdPercent) ?? KUBELET_DEFAULTS.imageGCHighThresholdPercent;
  const low = num(config.imageGCLowThresholdPercent) ?? KUBELET_DEFAULTS.imageGCLowThresholdPercent;
  for (const [key, v] of [
    ['imageGCHighThresholdPercent', high],
    ['imageGCLowThresholdPercent', low],
  ] as const) {
    if (v < 0 || v > 100)
      add('gc-threshold-invalid', 'error', `${key}: ${v} is outside 0..100`, `set ${key} between 0 and 100`);
  }
  if (low >= high) {
    add(
      'gc-thresholds-invalid',
      'error',
      `imageGCLowThresholdPercent (${low}) is not below imageGCHighThresholdPercent (${high}): the kubelet refuses it`,
      `set imageGCLowThresholdPercent below ${high}, e.g. ${Math.max(0, high - 10)}`,
    );
  } else if (high === 100) {
    add(
      'gc-disabled',
      'warning',
      'imageGCHighThresholdPercent: 100 disables image garbage collection',
      'set it to 85 so the disk never fills with old images',
    );
  }
  const evictionHard = (
    typeof config.evictionHard === 'object' && config.evictionHard !== null ? config.evictionHard : {}
  ) as Record<string, unknown>;
  const imagefs = String(evictionHard['imagefs.available'] ?? KUBELET_DEFAULTS.evictionHardImagefsAvailable);
  const m = /^(\d+(?:\.\d+)?)%$/.exec(imagefs);
  if (m && high < 100 && high > 100 - Number(m[1])) {
    add(
      'gc-after-eviction',
      'warning',
      `imageGCHighThresholdPercent: ${high} starts image GC only after the node passed evictionHard imagefs.available<${imagefs} (DiskPressure: pods are evicted and pulls fail)`,
      `set imageGCHighThresholdPercent to at most ${100 - Number(m[1])}`,
    );
  }

  // GC ages: pre-pulled images are "unused" until a pod starts, so GC may take them.
  const minAgeText =
    typeof config.imageMinimumGCAge === 'string'
      ? config.imageMinimumGCAge
      : KUBELET_DEFAULTS.imageMinimumGCAge;
  const minAge = parseGoDuration(minAgeText);
  if (minAge === undefined) {
    add(
      'duration-invalid',
      'error',
      `imageMinimumGCAge: "${minAgeText}" is not a duration`,
      'write a Go duration such as "2m" or "24h"',
    );
  } else if (minAge < 3600) {
    add(
      'pre-pull-gc',
      'info',
      `imageMinimumGCAge is ${minAgeText}: an image pre-pulled but not yet used by a pod can be garbage-collected after ${minAgeText} when the disk passes the high threshold`,
      'raise imageMinimumGCAge to cover the time from pre-pull to rollout (e.g. "24h"), or keep the disk below the GC threshold',
    );
  }
  if (config.imageMaximumGCAge !== undefined) {
    const maxText = String(config.imageMaximumGCAge);
    const maxAge = parseGoDuration(maxText);
    if (maxAge === undefined) {
      add(
        'duration-invalid',
        'error',
        `imageMaximumGCAge: "${maxText}" is not a duration`,
        'write a Go duration such as "168h"',
      );
    } else if (maxAge > 0) {
      if (minAge !== undefined && maxAge <= minAge) {
        add(
          'gc-ages-invalid',
          'error',
          `imageMaximumGCAge (${maxText}) is not above imageMinimumGCAge (${minAgeText}): the kubelet refuses it`,
          'make imageMaximumGCAge longer than imageMinimumGCAge, or 0 to disable it',
        );
      } else if (maxAge < 24 * 3600) {
        add(
          'max-gc-age-short',
          'warning',
          `imageMaximumGCAge: ${maxText} removes images unused that long even with free disk: pre-pulled images may be gone before the rollout`,
          'set imageMaximumGCAge to longer than your release cycle (e.g. "168h")',
        );
      }
      const gates = (config.featureGates ?? {}) as Record<string, unknown>;
      if (gates.ImageMaximumGCAge !== true) {
        add(
          'max-gc-age-feature-gate',
          'info',
          'imageMaximumGCAge needs the ImageMaximumGCAge feature gate on kubelet 1.29 (on by default from 1.30)',
          'on 1.29 add featureGates: {ImageMaximumGCAge: true}',
        );
      }
    }
  }

  // Pull request rate limits (kubelet side).
  const qps = num(config.registryPullQPS) ?? KUBELET_DEFAULTS.registryPullQPS;
  const burst = num(config.registryBurst) ?? KUBELET_DEFAULTS.registryBurst;
  if (qps < 0 || burst < 0) {
    add(
      'registry-qps-invalid',
      'error',
      `registryPullQPS (${qps}) and registryBurst (${burst}) must not be negative`,
      'set registryPullQPS: 10 and registryBurst: 20',
    );
  } else if (qps > 0) {
    const parallel = serialize ? 1 : (maxParallel ?? Infinity);
    if (parallel > burst) {
      add(
        'registry-qps-throttles',
        'warning',
        `registryBurst (${burst}) is below the pulls allowed at once (${parallel === Infinity ? 'unbounded' : parallel}): further pulls wait for registryPullQPS (${qps}/s)`,
        `raise registryBurst to at least ${parallel === Infinity ? 'maxParallelImagePulls' : parallel}, or set maxParallelImagePulls`,
      );
    }
    if (qps < 1) {
      add(
        'registry-qps-low',
        'warning',
        `registryPullQPS: ${qps} starts less than one pull a second`,
        'raise registryPullQPS to 5 or more (0 means no limit)',
      );
    }
  }
  return out;
}
