import type { Finding } from '../analyze/index.js';

/**
 * Unknown and misspelt KubeletConfiguration fields. The kubelet decodes its --config file leniently
 * (an unknown field is at most a log line), so `serializeImagePull: false` or an
 * `imagefs.available` indented out of `evictionHard` silently leaves the default in force. Each
 * unknown key is reported with the field it probably meant: a case-insensitive match, else the
 * nearest known name by edit distance, else (for a key that belongs one level down, such as an
 * eviction signal) the map it belongs in. Pure.
 */

/**
 * The top-level fields of KubeletConfiguration: the JSON tags of the Go struct in
 * k8s.io/kubelet/config/v1beta1/types.go (written from the published type, not copied; checked
 * against k8s.io/kubelet v0.37.2, i.e. Kubernetes 1.37), plus apiVersion and kind. Nested models
 * below follow the same file's KubeletAuthentication/KubeletAuthorization, MemorySwapConfiguration
 * and CrashLoopBackOffConfig, and k8s.io/component-base's logs/api/v1 and tracing/api/v1.
 */
export const KUBELET_FIELDS: readonly string[] = [
  'apiVersion',
  'kind',
  'enableServer',
  'staticPodPath',
  'podLogsDir',
  'syncFrequency',
  'fileCheckFrequency',
  'httpCheckFrequency',
  'staticPodURL',
  'staticPodURLHeader',
  'address',
  'port',
  'readOnlyPort',
  'tlsCertFile',
  'tlsPrivateKeyFile',
  'tlsCipherSuites',
  'tlsMinVersion',
  'tlsCurvePreferences',
  'rotateCertificates',
  'serverTLSBootstrap',
  'authentication',
  'authorization',
  'registryPullQPS',
  'registryBurst',
  'imagePullCredentialsVerificationPolicy',
  'preloadedImagesVerificationAllowlist',
  'eventRecordQPS',
  'eventBurst',
  'enableDebuggingHandlers',
  'enableContentionProfiling',
  'healthzPort',
  'healthzBindAddress',
  'oomScoreAdj',
  'clusterDomain',
  'clusterDNS',
  'streamingConnectionIdleTimeout',
  'nodeStatusUpdateFrequency',
  'nodeStatusReportFrequency',
  'nodeLeaseDurationSeconds',
  'imageMinimumGCAge',
  'imageMaximumGCAge',
  'imageGCHighThresholdPercent',
  'imageGCLowThresholdPercent',
  'volumeStatsAggPeriod',
  'kubeletCgroups',
  'systemCgroups',
  'cgroupRoot',
  'cgroupsPerQOS',
  'cgroupDriver',
  'cpuManagerPolicy',
  'cpuManagerPolicyOptions',
  'cpuManagerReconcilePeriod',
  'singleProcessOOMKill',
  'memoryManagerPolicy',
  'memoryReservationPolicy',
  'topologyManagerPolicy',
  'topologyManagerScope',
  'topologyManagerPolicyOptions',
  'qosReserved',
  'runtimeRequestTimeout',
  'hairpinMode',
  'maxPods',
  'podCIDR',
  'podPidsLimit',
  'resolvConf',
  'runOnce',
  'cpuCFSQuota',
  'cpuCFSQuotaPeriod',
  'nodeStatusMaxImages',
  'maxOpenFiles',
  'contentType',
  'kubeAPIQPS',
  'kubeAPIBurst',
  'serializeImagePulls',
  'maxParallelImagePulls',
  'evictionHard',
  'evictionSoft',
  'evictionSoftGracePeriod',
  'evictionPressureTransitionPeriod',
  'evictionMaxPodGracePeriod',
  'evictionMinimumReclaim',
  'mergeDefaultEvictionSettings',
  'podsPerCore',
  'enableControllerAttachDetach',
  'protectKernelDefaults',
  'makeIPTablesUtilChains',
  'iptablesMasqueradeBit',
  'iptablesDropBit',
  'featureGates',
  'failSwapOn',
  'failCgroupV1',
  'memorySwap',
  'containerLogMaxSize',
  'containerLogMaxFiles',
  'containerLogMaxWorkers',
  'containerLogMonitorInterval',
  'configMapAndSecretChangeDetectionStrategy',
  'systemReserved',
  'kubeReserved',
  'reservedSystemCPUs',
  'showHiddenMetricsForVersion',
  'systemReservedCgroup',
  'kubeReservedCgroup',
  'enforceNodeAllocatable',
  'allowedUnsafeSysctls',
  'defaultPodSysctls',
  'volumePluginDir',
  'providerID',
  'kernelMemcgNotification',
  'logging',
  'enableSystemLogHandler',
  'enableSystemLogQuery',
  'shutdownGracePeriod',
  'shutdownGracePeriodCriticalPods',
  'shutdownGracePeriodByPodPriority',
  'crashLoopBackOff',
  'reservedMemory',
  'enableProfilingHandler',
  'enableDebugFlagsHandler',
  'seccompDefault',
  'memoryThrottlingFactor',
  'registerWithTaints',
  'registerNode',
  'tracing',
  'localStorageCapacityIsolation',
  'containerRuntimeEndpoint',
  'imageServiceEndpoint',
  'userNamespaces',
];

/** Eviction signals (k8s.io/kubelet/config/v1beta1 eviction docs; pkg/kubelet/eviction/api). */
export const EVICTION_SIGNALS: readonly string[] = [
  'memory.available',
  'nodefs.available',
  'nodefs.inodesFree',
  'imagefs.available',
  'imagefs.inodesFree',
  'containerfs.available',
  'containerfs.inodesFree',
  'pid.available',
  'allocatableMemory.available',
];

const EVICTION_MAPS = ['evictionHard', 'evictionSoft', 'evictionSoftGracePeriod', 'evictionMinimumReclaim'];

/** Nested objects whose keys are checked: a list of keys, or a nested model. */
type Model = { [key: string]: Model | null };
const leaves = (...keys: string[]): Model => Object.fromEntries(keys.map((k) => [k, null]));

const NESTED: Record<string, Model> = {
  authentication: {
    x509: leaves('clientCAFile'),
    webhook: leaves('enabled', 'cacheTTL'),
    anonymous: leaves('enabled'),
  },
  authorization: { mode: null, webhook: leaves('cacheAuthorizedTTL', 'cacheUnauthorizedTTL') },
  ...Object.fromEntries(EVICTION_MAPS.map((m) => [m, leaves(...EVICTION_SIGNALS)])),
  logging: {
    format: null,
    flushFrequency: null,
    verbosity: null,
    vmodule: null,
    options: { json: leaves('splitStream', 'infoBufferSize'), text: leaves('splitStream', 'infoBufferSize') },
  },
  memorySwap: leaves('swapBehavior'),
  crashLoopBackOff: leaves('maxContainerRestartPeriod'),
  tracing: leaves('endpoint', 'samplingRatePerMillion'),
};

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i]![j] = v;
    }
  }
  return at(a.length, b.length);
}

/** The known name `key` was probably meant to be, or undefined when none is close. */
export function closestName(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameCase = known.find((k) => k.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  const limit = key.length <= 4 ? 1 : key.length <= 10 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const k of known) {
    const distance = editDistance(lower, k.toLowerCase());
    if (distance < bestDistance) {
      best = k;
      bestDistance = distance;
    }
  }
  return best;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

interface Unknown {
  path: string;
  meant: string | undefined;
  hint?: string;
  fix?: string;
  /** An unsupported eviction signal stops the kubelet (pkg/kubelet/eviction ParseThresholdConfig). */
  refused?: boolean;
}

function unknownField(u: Unknown): Finding {
  const guess = u.meant === undefined ? '.' : `; did you mean ${u.meant}?`;
  const effect = u.refused
    ? 'The kubelet refuses to start with an unsupported eviction signal.'
    : 'The kubelet ignores it and keeps the default.';
  return {
    rule: 'unknown-field',
    severity: u.refused ? 'error' : 'warning',
    message: `unknown field ${u.path}${guess}${u.hint === undefined ? '' : ` ${u.hint}`} ${effect}`,
    fix:
      u.fix ??
      (u.meant === undefined
        ? `remove ${u.path}, or check its name in the KubeletConfiguration (kubelet.config.k8s.io/v1beta1) reference`
        : `rename ${u.path} to ${u.meant}`),
  };
}

function checkNested(value: Record<string, unknown>, model: Model, prefix: string, out: Finding[]): void {
  const known = Object.keys(model);
  const refused = EVICTION_MAPS.includes(prefix);
  for (const [key, child] of Object.entries(value)) {
    const path = `${prefix}.${key}`;
    if (!(key in model)) {
      const meant = closestName(key, known);
      out.push(
        unknownField({ path, meant: meant === undefined ? undefined : `${prefix}.${meant}`, refused }),
      );
      continue;
    }
    const sub = model[key];
    if (sub && isObject(child)) checkNested(child, sub, path, out);
  }
}

/** Unknown top-level and modelled nested keys of a KubeletConfiguration, in document order. */
export function checkKubeletFields(config: Record<string, unknown>): Finding[] {
  const out: Finding[] = [];
  // The eviction map a stray signal most likely belonged to: the last one above it in the file.
  let lastEvictionMap = 'evictionHard';
  for (const [key, value] of Object.entries(config)) {
    if (EVICTION_MAPS.includes(key)) lastEvictionMap = key;
    if (KUBELET_FIELDS.includes(key)) {
      const model = NESTED[key];
      if (model && isObject(value)) checkNested(value, model, key, out);
      continue;
    }
    const signal = closestName(key, EVICTION_SIGNALS);
    if (signal !== undefined && key.includes('.')) {
      out.push(
        unknownField({
          path: key,
          meant: `${lastEvictionMap}.${signal}`,
          hint: `It is an eviction signal: indent it under ${lastEvictionMap}.`,
          fix: `move ${key} under ${lastEvictionMap} (indented, as ${signal})`,
        }),
      );
      continue;
    }
    out.push(unknownField({ path: key, meant: closestName(key, KUBELET_FIELDS) }));
  }
  return out;
}
